"""Log-average miss rate, CityPersons style, one category (reference §6.2, §6.3)."""
from __future__ import annotations

import numpy as np

from tinysm.evaluation.matching import IGNORED, MATCHED, Matches, MatchRules
from tinysm.evaluation.overlaps import GroundTruthColumns, RankedDetections
from tinysm.evaluation.protocol import (
    MAX_THRESHOLD, MR_FALLBACK_THRESHOLD, MR_MAX_DETS, MR_SIZE_MARGIN,
)


def mr_rules(gt: GroundTruthColumns, dets: RankedDetections, thresholds: np.ndarray, setups: np.ndarray) -> MatchRules:
    """Matching rules of reference §6.2, one problem per (threshold, setup), threshold-major.

    `setups` is an (S, 2) array of inclusive size bounds. Ignore and uncertain GTs and GTs outside
    the setup are ignored, compared by IoD and reusable; `iscrowd` plays no part.
    """
    n_t = len(thresholds)
    in_setup = (gt.size >= setups[:, :1]) & (gt.size <= setups[:, 1:])            # (S, G)
    regular = np.tile(in_setup & ~gt.flagged, (n_t, 1))                          # (P, G)
    # Top 1000 first, then the size filter [lo/1.25, hi·1.25) on √(wh).
    size = np.sqrt(dets.area)
    kept = (dets.rank < MR_MAX_DETS) & (size >= setups[:, :1] / MR_SIZE_MARGIN) & (size < setups[:, 1:] * MR_SIZE_MARGIN)
    return MatchRules(thresholds=np.repeat(np.minimum(thresholds, MAX_THRESHOLD), len(setups)), regular=regular,
                      reusable=~regular, use_iod=~regular, active=np.tile(kept, (n_t, 1)),
                      fallback_thresholds=np.full(len(regular), MR_FALLBACK_THRESHOLD),
                      fallback_strict=np.ones(len(regular), bool), gt_area=gt.area)


def recall_at_fppi(matches: Matches, rules: MatchRules, gt: GroundTruthColumns, dets: RankedDetections,
                   n_images: int, points: np.ndarray, reference_quirks: bool) -> np.ndarray:
    """Recall read at each FPPI point, shape (P, len(points)); −1 where a setup has no regular GT.

    `n_images` is the number of images in the GT file (the FPPI denominator).
    """
    top = np.flatnonzero(dets.rank < MR_MAX_DETS)
    ranking = top[np.argsort(-dets.score[top], kind="stable")]     # reference §6.2: pooled as for AP
    status, active = matches.status[:, ranking], rules.active[:, ranking]
    id_zero = matches.matched_to(gt.ann_id == 0)[:, ranking] if reference_quirks else None
    n_regular = rules.regular.sum(axis=1)
    out = []
    for p in range(len(status)):
        # Detections outside the setup's size filter are not entries at all (reference §6.2).
        entries = status[p][active[p]]
        true_positive = entries == MATCHED
        if id_zero is not None:
            true_positive &= ~id_zero[p][active[p]]        # reference §6.3: id 0 reads as "no match"
        false_positive = ~true_positive & (entries != IGNORED)
        out.append(_read_recall(true_positive, false_positive, n_regular[p], n_images, points, reference_quirks))
    return np.stack(out)


def _read_recall(true_positive: np.ndarray, false_positive: np.ndarray, n_regular: int, n_images: int,
                 points: np.ndarray, reference_quirks: bool) -> np.ndarray:
    """Recall at the last ranked entry (ignored ones included) whose FPPI is <= each point."""
    if n_regular == 0:
        return np.full(len(points), -1.0)
    if len(true_positive) == 0:
        return np.zeros(len(points))
    fppi = np.cumsum(false_positive, dtype=np.float64) / n_images
    index = np.searchsorted(fppi, points, side="right") - 1
    # Recall = true positives up to the entry / regular GTs (integer counts: the same bits as a cumsum).
    recall = np.searchsorted(np.flatnonzero(true_positive), index, side="right") / n_regular
    # reference §6.3: with no entry at or below a point the reference reads index -1, the final recall.
    below = np.count_nonzero(true_positive) / n_regular if reference_quirks else 0.0
    return np.where(index >= 0, recall, below)


def log_average_miss_rate(recall: np.ndarray) -> np.ndarray:
    """MR per (threshold, setup) from (T, S, K, 9) recalls: exp(mean ln(1 − recall)), −1 if undefined."""
    n_t, n_s = recall.shape[:2]
    out = np.full((n_t, n_s), -1.0)
    with np.errstate(divide="ignore"):       # recall 1 gives ln 0 = −inf and MR 0 (no floor, reference §6.2)
        for t in range(n_t):
            for s in range(n_s):
                miss = 1 - recall[t, s].T.ravel()      # the reference's (point, category) C order
                miss = miss[miss < 2]
                if len(miss):
                    out[t, s] = np.exp(np.mean(np.log(miss)))
    return out
