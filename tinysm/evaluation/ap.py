"""Average precision of the TinyPerson "tiny" COCO protocol, one category (reference §6.1, §6.3)."""
from __future__ import annotations

import numpy as np

from tinysm.evaluation.matching import MATCHED, UNMATCHED, Matches, MatchRules
from tinysm.evaluation.overlaps import GroundTruthColumns, RankedDetections
from tinysm.evaluation.protocol import MAX_THRESHOLD, RECALL_THRESHOLDS


def ap_rules(gt: GroundTruthColumns, dets: RankedDetections, thresholds: np.ndarray, ranges: np.ndarray,
             max_dets: int) -> MatchRules:
    """Matching rules of reference §6.1, one problem per (threshold, range), threshold-major.

    `ranges` is an (A, 2) array of inclusive area bounds. Crowd, ignore and uncertain GTs and GTs
    outside the range are ignored; crowd GTs are compared by IoD and may absorb many detections.
    """
    n_t = len(thresholds)
    in_range = (gt.area >= ranges[:, :1]) & (gt.area <= ranges[:, 1:])           # (A, G)
    regular = np.tile(in_range & ~(gt.crowd | gt.flagged), (n_t, 1))             # (P, G)
    crowd = np.broadcast_to(gt.crowd, regular.shape)
    bounded = np.repeat(np.minimum(thresholds, MAX_THRESHOLD), len(ranges))
    return MatchRules(thresholds=bounded, regular=regular, reusable=crowd, use_iod=crowd,
                      active=np.broadcast_to(dets.rank < max_dets, (len(regular), len(dets))),
                      fallback_thresholds=bounded, fallback_strict=np.zeros(len(regular), bool), gt_area=gt.area)


def precision_curves(matches: Matches, rules: MatchRules, gt: GroundTruthColumns, dets: RankedDetections,
                     ranges: np.ndarray, reference_quirks: bool) -> np.ndarray:
    """Precision at the 101 recall points, shape (T, A, 101); −1 where a range has no regular GT."""
    n_a = len(ranges)
    # reference §6.1: pool images in id order (the detections' order here), then a stable sort by score.
    kept = np.flatnonzero(rules.active[0])
    ranking = kept[np.argsort(-dets.score[kept], kind="stable")]
    status = matches.status[:, ranking]
    # reference §6.3: the reference stores the matched GT's id and reads 0 as "no match".
    id_zero = matches.matched_to(gt.ann_id == 0)[:, ranking] if reference_quirks else None
    area = dets.area[ranking]
    outside = (area < ranges[:, :1]) | (area > ranges[:, 1:])                   # (A, n)
    n_regular = rules.regular.sum(axis=1)
    curves = []
    for p in range(len(status)):
        true_positive, unmatched = status[p] == MATCHED, status[p] == UNMATCHED
        if id_zero is not None:
            true_positive &= ~id_zero[p]
            unmatched |= id_zero[p]
        # An unmatched detection outside the range is ignored; IGNORED ones are never unmatched.
        false_positive = unmatched & ~outside[p % n_a]
        curves.append(_sample_precision(true_positive, false_positive, n_regular[p]))
    return np.stack(curves).reshape(-1, n_a, len(RECALL_THRESHOLDS))


def _sample_precision(true_positive: np.ndarray, false_positive: np.ndarray, n_regular: int) -> np.ndarray:
    """COCO's interpolated precision at the recall points (reference §6.1).

    Recall only grows at true positives, so the first entry reaching a recall point is always one,
    and the precision envelope there (the running max from the right) is the running max over the
    true positives alone: later entries that are not true positives never beat the true positive
    before them. Working on the true positives only gives the reference's numbers bit for bit.
    """
    if n_regular == 0:
        return np.full(len(RECALL_THRESHOLDS), -1.0)
    hits = np.flatnonzero(true_positive)
    if len(hits) == 0:
        return np.zeros(len(RECALL_THRESHOLDS))
    tp = np.arange(1, len(hits) + 1, dtype=np.float64)
    fp = np.cumsum(false_positive, dtype=np.float64)[hits]
    precision = tp / (fp + tp + np.spacing(1))               # the reference's expression, for equal bits
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    index = np.searchsorted(tp / n_regular, RECALL_THRESHOLDS, side="left")
    reached = index < len(hits)
    return np.where(reached, envelope[np.minimum(index, len(hits) - 1)], 0.0)


def average_precision(curves: np.ndarray) -> np.ndarray:
    """AP per (threshold, range) from (T, A, K, 101) curves: the mean of the defined samples, −1 if none."""
    n_t, n_a = curves.shape[:2]
    out = np.full((n_t, n_a), -1.0)
    for t in range(n_t):
        for a in range(n_a):
            # The reference's s[s > -1] over (recall point, category) in C order; np.mean of the same
            # values in the same order gives the same bits.
            values = curves[t, a].T.ravel()
            values = values[values > -1]
            if len(values):
                out[t, a] = np.mean(values)
    return out
