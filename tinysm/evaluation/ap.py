"""Average precision of the TinyPerson "tiny" COCO protocol, one category (SPEC §6.1, §6.3)."""
from __future__ import annotations

import numpy as np

from tinysm.evaluation.matching import IGNORED, MATCHED, UNMATCHED, MatchRules, greedy_match
from tinysm.evaluation.overlaps import Candidates, GroundTruthColumns, RankedDetections
from tinysm.evaluation.protocol import MAX_THRESHOLD, RECALL_THRESHOLDS


def precision_curves(gt: GroundTruthColumns, dets: RankedDetections, cands: Candidates,
                     thresholds: np.ndarray, ranges: np.ndarray, max_dets: int,
                     reference_quirks: bool) -> np.ndarray:
    """Precision at the 101 recall points, shape (T, A, 101); −1 where a range has no regular GT.

    `ranges` is an (A, 2) array of inclusive area bounds. Problems are ordered threshold-major.
    """
    n_t, n_a = len(thresholds), len(ranges)
    in_range = (gt.area >= ranges[:, :1]) & (gt.area <= ranges[:, 1:])          # (A, G)
    regular = np.tile(in_range & ~(gt.crowd | gt.flagged), (n_t, 1))             # (P, G)
    crowd = np.broadcast_to(gt.crowd, regular.shape)
    active = np.broadcast_to(dets.rank < max_dets, (n_t * n_a, len(dets)))
    bounded = np.repeat(np.minimum(thresholds, MAX_THRESHOLD), n_a)
    rules = MatchRules(thresholds=bounded, regular=regular, reusable=crowd, use_iod=crowd, active=active,
                       fallback_thresholds=bounded, fallback_strict=False, gt_area=gt.area)
    matches = greedy_match(cands, dets.rank, dets.area, rules)

    matched = matches.status == MATCHED
    if reference_quirks:
        # SPEC §6.3: the reference stores the matched GT's id and reads 0 as "no match".
        id_zero = matched & (gt.ann_id[np.maximum(matches.gt, 0)] == 0)
    else:
        id_zero = np.zeros_like(matched)
    unmatched = (matches.status == UNMATCHED) | id_zero
    area = dets.area
    outside = np.tile((area < ranges[:, :1]) | (area > ranges[:, 1:]), (n_t, 1))  # (P, N)
    ignored = (matches.status == IGNORED) | (unmatched & outside)
    true_positive = matched & ~id_zero
    false_positive = unmatched & ~ignored

    # SPEC §6.1: pool images in id order (the detections' order here), then a stable sort by score.
    kept = np.flatnonzero(dets.rank < max_dets)
    ranking = kept[np.argsort(-dets.score[kept], kind="stable")]
    n_regular = np.tile(regular[:n_a].sum(axis=1), n_t)
    curves = np.stack([_sample_precision(true_positive[p, ranking], false_positive[p, ranking], n_regular[p])
                       for p in range(n_t * n_a)])
    return curves.reshape(n_t, n_a, len(RECALL_THRESHOLDS))


def _sample_precision(true_positive: np.ndarray, false_positive: np.ndarray, n_regular: int) -> np.ndarray:
    """COCO's interpolated precision at the recall points (SPEC §6.1)."""
    if n_regular == 0:
        return np.full(len(RECALL_THRESHOLDS), -1.0)
    tp = np.cumsum(true_positive, dtype=np.float64)
    fp = np.cumsum(false_positive, dtype=np.float64)
    recall = tp / n_regular
    precision = tp / (fp + tp + np.spacing(1))               # the reference's expression, for equal bits
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    index = np.searchsorted(recall, RECALL_THRESHOLDS, side="left")
    reached = index < len(recall)
    return np.where(reached, envelope[np.minimum(index, len(recall) - 1)] if len(recall) else 0.0, 0.0)


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
