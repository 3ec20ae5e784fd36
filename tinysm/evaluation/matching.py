"""Greedy detection-to-GT matching of reference §6.1 (AP) and §6.2 (MR), vectorised across images.

Within an image the matching is sequential: detections by descending score, each taking the best
still-free GT, so an earlier detection can steal a GT from a later one. Across images it is
independent. So images are processed in lockstep: turn j handles the j-th detection of every image
that overlaps some GT enough to matter, for every (IoU threshold × range) problem at once, as numpy
operations; the other detections are unmatched by construction and never touch the state.

The rules, per problem and detection (the reference's loops, reference §6.1-§6.2):
1. Among free GTs with overlap >= t, the regular ones win; among them the highest overlap, and on
   equal overlap the one later in file order (the reference keeps replacing on `>=`).
2. Otherwise, the same among free ignored GTs: the detection is ignored.
3. Otherwise the fallback: f(x) = x/(1+x)·(1 + area_g/A_d) over every ignored GT (the first maximum);
   the detection is ignored when f >= the fallback threshold (AP: t) or > it (MR: 0.5).
A chosen GT is taken, unless it is reusable (crowd for AP; every ignored GT for MR).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinysm.evaluation.overlaps import Candidates

UNMATCHED, MATCHED, IGNORED = 0, 1, 2
_REGULAR, _REUSABLE, _BY_IOD = 1, 2, 4   # bits of the per-(problem, GT) kind code


@dataclass(frozen=True)
class MatchRules:
    """What AP and MR matching differ in; P problems (IoU threshold × range), G GTs, N detections."""

    thresholds: np.ndarray          # (P,) min(t, 1 - 1e-10)
    regular: np.ndarray             # (P, G) bool: GT counts in problem p (else it is ignored)
    reusable: np.ndarray            # (P, G) bool: GT may absorb several detections
    use_iod: np.ndarray             # (P, G) bool: the overlap with this GT is IoD, not IoU
    active: np.ndarray              # (P, N) bool: detection takes part in problem p
    fallback_thresholds: np.ndarray  # (P,)
    fallback_strict: np.ndarray     # (P,) bool: MR's rule is "> 0.5", AP's is ">= t"
    gt_area: np.ndarray             # (G,) the `area` field, used by the fallback formula

    @classmethod
    def stack(cls, parts: list["MatchRules"]) -> "MatchRules":
        """One rule set holding the problems of all `parts` (same GTs and detections), in order."""
        return cls(*(np.concatenate([getattr(part, name) for part in parts])
                     for name in ("thresholds", "regular", "reusable", "use_iod", "active",
                                  "fallback_thresholds", "fallback_strict")), gt_area=parts[0].gt_area)


@dataclass(frozen=True)
class Matches:
    """Per problem and detection: UNMATCHED / MATCHED (to a regular GT) / IGNORED, and the chosen GTs.

    Only detections that overlap some GT enough can choose one, so the GT indices are kept for
    those (`det`) alone.
    """

    status: np.ndarray   # (P, N) int8
    det: np.ndarray      # (n,) the detections that could choose a GT
    gt: np.ndarray       # (P, n) int64 GT index they chose, -1 for none

    def split(self, sizes: list[int]) -> list["Matches"]:
        """The matches of consecutive problem groups of the given sizes (the inverse of `MatchRules.stack`)."""
        cuts = np.cumsum(sizes)[:-1]
        return [Matches(status, self.det, gt) for status, gt in zip(np.split(self.status, cuts), np.split(self.gt, cuts))]

    def matched_to(self, gt_mask: np.ndarray) -> np.ndarray:
        """(P, N) bool: the detection is MATCHED to a GT where `gt_mask` (G,) is true."""
        out = np.zeros(self.status.shape, bool)
        out[:, self.det] = (self.gt >= 0) & gt_mask[np.maximum(self.gt, 0)]
        return out & (self.status == MATCHED)


def iod_from_overlap(overlap: np.ndarray, gt_area: np.ndarray, det_area: np.ndarray) -> np.ndarray:
    """The reference's IoD formula x/(1+x)·(1 + area_g/A_d) (exact IoD when x is the IoU), reference §6.1-§6.2."""
    return overlap / (1 + overlap) * (1 + gt_area / det_area)


def greedy_match(cands: Candidates, det_image: np.ndarray, det_area: np.ndarray, rules: MatchRules) -> Matches:
    """Match every detection in every problem (see the module docstring for the rules).

    `cands` rows must be in the detections' order (by image, then rank), as `overlapping_pairs` gives.
    """
    n_problems, n_dets = rules.active.shape
    status = np.full((n_problems, n_dets), UNMATCHED, np.int8)
    taken = np.zeros(rules.regular.shape, bool)
    useful, width = _useful_pairs(cands, det_area, rules)
    matched_gt = np.full((n_problems, len(useful)), -1, np.int64)
    # What does not depend on the matching state is computed once for all rows.
    kind = (rules.regular * _REGULAR | rules.reusable * _REUSABLE | rules.use_iod * _BY_IOD).astype(np.uint8)
    row_area = det_area[useful.det][:, None]
    gt_area = rules.gt_area[np.maximum(useful.gt, 0)]
    fallback = (iod_from_overlap(useful.iou, gt_area, row_area), iod_from_overlap(useful.iod, gt_area, row_area))
    # Only the order of the useful rows within an image matters, so turn j handles the j-th useful
    # detection of every image: as many turns as the busiest image has useful detections.
    image = det_image[useful.det]
    turn = np.arange(len(useful)) - np.searchsorted(image, image)
    order = np.argsort(turn, kind="stable")
    for rows in np.split(order, np.flatnonzero(np.diff(turn[order])) + 1) if len(order) else []:
        # One detection per image: the GTs these rows touch are disjoint, so one vectorised update is exact.
        det = useful.det[rows]
        step_status, step_gt = _match_step(useful, rows, int(width[rows].max()), det, kind, fallback, rules, taken)
        status[:, det], matched_gt[:, rows] = step_status, step_gt
        problem, column = np.nonzero(step_gt >= 0)
        taken[problem, step_gt[problem, column]] = True
    return Matches(status, useful.det, matched_gt)


def _useful_pairs(cands: Candidates, det_area: np.ndarray, rules: MatchRules) -> tuple[Candidates, np.ndarray]:
    """The pairs that can pass some threshold, packed to the left of each row, and each row's count.

    A pair below every threshold can neither match nor be the fallback's first maximum (which is
    at or above its threshold), so dropping it changes nothing; rows left empty are unmatched.
    """
    if len(cands) == 0:
        return cands, np.zeros(0, np.int64)
    valid = cands.gt >= 0
    gt_area = rules.gt_area[np.where(valid, cands.gt, 0)]
    # IoD >= IoU and f is increasing in x, so max(IoD, f(IoD)) bounds every value a rule compares.
    upper = np.maximum(cands.iod, iod_from_overlap(cands.iod, gt_area, det_area[cands.det][:, None]))
    lowest = min(rules.thresholds.min(initial=np.inf), rules.fallback_thresholds.min(initial=np.inf))
    keep = valid & (upper >= lowest)
    width = keep.sum(axis=1)
    rows = np.flatnonzero(width > 0)
    packed = np.argsort(~keep[rows], axis=1, kind="stable")   # kept pairs first, file order kept
    gt = np.where(np.take_along_axis(keep[rows], packed, axis=1), np.take_along_axis(cands.gt[rows], packed, axis=1), -1)
    return Candidates(cands.det[rows], gt, np.take_along_axis(cands.iou[rows], packed, axis=1),
                      np.take_along_axis(cands.iod[rows], packed, axis=1)), width[rows]


def _match_step(cands: Candidates, rows: np.ndarray, width: int, det: np.ndarray, kind: np.ndarray,
                fallback: tuple[np.ndarray, np.ndarray], rules: MatchRules,
                taken: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One turn: (P, k) status and chosen GT (−1 for none) of detections from k different images."""
    gt = cands.gt[rows, :width]                             # (k, K)
    valid = gt >= 0
    safe_gt = np.where(valid, gt, 0)
    gt_kind = kind[:, safe_gt]                              # (P, k, K)
    is_regular = (gt_kind & _REGULAR).astype(bool)
    regular, ignored = is_regular & valid, ~is_regular & valid
    by_iod = (gt_kind & _BY_IOD).astype(bool)
    overlap = np.where(by_iod, cands.iod[rows, :width], cands.iou[rows, :width])
    free = (gt_kind & _REUSABLE).astype(bool) | ~taken[:, safe_gt]
    active = rules.active[:, det][:, :, None]
    hit = free & active & (overlap >= rules.thresholds[:, None, None])
    regular_hit, ignored_hit = hit & regular, hit & ignored
    has_regular = regular_hit.any(axis=-1)
    has_ignored = ignored_hit.any(axis=-1) & ~has_regular
    choice = np.where(has_regular, _last_argmax(np.where(regular_hit, overlap, -np.inf)),
                      _last_argmax(np.where(ignored_hit, overlap, -np.inf)))

    fallback_value = np.where(ignored & active, np.where(by_iod, fallback[1][rows, :width], fallback[0][rows, :width]),
                              -np.inf)
    fallback_choice = fallback_value.argmax(axis=-1)        # the first maximum, as np.argmax in the reference
    best = np.take_along_axis(fallback_value, fallback_choice[..., None], axis=-1)[..., 0]
    limit = rules.fallback_thresholds[:, None]
    passes = np.where(rules.fallback_strict[:, None], best > limit, best >= limit)
    use_fallback = passes & ~has_regular & ~has_ignored
    choice = np.where(use_fallback, fallback_choice, choice)

    chosen = has_regular | has_ignored | use_fallback
    chosen_gt = np.where(chosen, np.take_along_axis(np.broadcast_to(gt, overlap.shape), choice[..., None],
                                                    axis=-1)[..., 0], -1)
    step_status = np.where(has_regular, MATCHED, np.where(chosen, IGNORED, UNMATCHED)).astype(np.int8)
    return step_status, chosen_gt


def _last_argmax(values: np.ndarray) -> np.ndarray:
    """Index of the last maximum along the last axis."""
    return values.shape[-1] - 1 - values[..., ::-1].argmax(axis=-1)
