"""`evaluate_tiny`: TinyPerson AP and MR of a detection file against a GT file (reference §6)."""
from __future__ import annotations

import os
import warnings
from typing import Any, Sequence

import numpy as np

from tinysm.data.annotations import CocoAnnotations, load_annotations
from tinysm.evaluation.ap import ap_rules, average_precision, precision_curves
from tinysm.data.detections import Detections, PartialResultsWarning, load_detections
from tinysm.evaluation.matching import MatchRules, greedy_match
from tinysm.evaluation.mr import log_average_miss_rate, mr_rules, recall_at_fppi
from tinysm.evaluation.overlaps import GroundTruthColumns, RankedDetections, overlapping_pairs
from tinysm.evaluation.protocol import (
    AP_RANGES, FPPI_POINTS, IOU_THRESHOLDS, MR_MAX_DETS, MR_SETUPS, RECALL_THRESHOLDS,
)
from tinysm.evaluation.result import TinyResult

# Dense log grid for plotting miss rate against FPPI (not part of the MR itself).
FPPI_GRID = np.logspace(-3, 1, 81)


def evaluate_tiny(gt: str | os.PathLike | CocoAnnotations, detections: Any, max_dets: int = 1000,
                  iou_thrs: Sequence[float] = IOU_THRESHOLDS, reference_quirks: bool = False) -> TinyResult:
    """TinyPerson AP (reference §6.1, all ranges) and MR (reference §6.2, all setups) at every IoU threshold.

    `gt`: the "all"-task GT file (path or loaded), with its ignore/uncertain flags; every image in
    it counts for FPPI (pass the test set without dense images, as the reference does, reference §1.2). `detections`: a COCO results path, a list of result dicts, a mapping of
    arrays (`image_id`, `category_id`, `bbox` N×4 xywh, `score`) or `Detections`.
    `max_dets` caps AP's detections per image (reference §6.1: 1000; 200 for the older tables); MR always
    keeps 1000. With several categories the numbers are COCO-style means over categories.

    `reference_quirks=False` (the default) gives the protocol as intended. `True` reproduces the two
    bugs of the reference code (reference §6.3: a match to the GT with annotation id 0 counts as a false
    positive; MR reads the final recall when no entry has FPPI <= a point) so that numbers equal the
    published tooling's bit for bit.
    """
    thresholds = _check_thresholds(iou_thrs)
    if isinstance(max_dets, bool) or not isinstance(max_dets, (int, np.integer)) or max_dets < 1:
        raise ValueError(f"max_dets must be a positive integer, got {max_dets!r}")
    annotations = gt if isinstance(gt, CocoAnnotations) else load_annotations(gt)
    image_ids = np.array(sorted(image.id for image in annotations.images), dtype=np.int64)
    category_ids = sorted({int(c["id"]) for c in annotations.categories if "id" in c}
                          | {a.category_id for a in annotations.annotations})
    dets = load_detections(detections, image_ids, category_ids)
    warn_partial_coverage(dets, image_ids, detections, annotations)
    gt_columns = GroundTruthColumns.from_annotations(annotations, image_ids)

    ap_bounds = np.array([[lo, hi] for _, lo, hi in AP_RANGES])
    mr_bounds = np.array([[lo, hi] for _, lo, hi in MR_SETUPS])
    points = np.concatenate([FPPI_POINTS, FPPI_GRID])
    n_images = len(image_ids)
    precision, recall = [], []
    for category in category_ids:
        gt_cat = gt_columns.select(gt_columns.category_id == category)
        in_category = dets.category_id == category
        if len(gt_cat) == 0 and not in_category.any():
            continue  # COCO skips it too: every range is undefined
        ranked = RankedDetections.from_detections(dets, in_category, image_ids, max(max_dets, MR_MAX_DETS))
        cands = overlapping_pairs(gt_cat, ranked, n_images)
        ap = ap_rules(gt_cat, ranked, thresholds, ap_bounds, max_dets)
        mr = mr_rules(gt_cat, ranked, thresholds, mr_bounds)
        # AP and MR share one matching pass: its turns cost more than its problem count does.
        ap_matches, mr_matches = greedy_match(cands, ranked.image, ranked.area, MatchRules.stack([ap, mr])).split(
            [len(ap.thresholds), len(mr.thresholds)])
        precision.append(precision_curves(ap_matches, ap, gt_cat, ranked, ap_bounds, reference_quirks))
        recall.append(recall_at_fppi(mr_matches, mr, gt_cat, ranked, n_images, points, reference_quirks)
                      .reshape(len(thresholds), len(mr_bounds), len(points)))
    if precision:
        precision_k, recall_k = np.stack(precision, axis=2), np.stack(recall, axis=2)  # (T, ·, K, ·)
    else:
        precision_k = np.full((len(thresholds), len(AP_RANGES), 1, len(RECALL_THRESHOLDS)), -1.0)
        recall_k = np.full((len(thresholds), len(MR_SETUPS), 1, len(points)), -1.0)
    n_points = len(FPPI_POINTS)
    return TinyResult(
        iou_thresholds=thresholds, ap_ranges=tuple(name for name, _, _ in AP_RANGES),
        mr_setups=tuple(name for name, _, _ in MR_SETUPS),
        ap=_percent(average_precision(precision_k)), mr=_percent(log_average_miss_rate(recall_k[..., :n_points])),
        recall_thresholds=RECALL_THRESHOLDS, precision=_mean_defined(precision_k),
        fppi_points=FPPI_POINTS, miss_rate=_miss_rate(recall_k[..., :n_points]),
        fppi_grid=FPPI_GRID, miss_rate_curve=_miss_rate(recall_k[..., n_points:]),
        max_dets=int(max_dets), reference_quirks=bool(reference_quirks), n_images=n_images,
    )


def warn_partial_coverage(dets: Detections, image_ids: np.ndarray, source: Any, gt: CocoAnnotations) -> None:
    """`PartialResultsWarning` with the counts when some GT images have no detection at all.

    Every GT image counts (recall, FPPI), so a results file of a subset of the images, or one meant
    for another ground truth, would silently lower AP and raise MR; a weak detector that finds
    nothing in some images gets the same warning, and its numbers are right.
    """
    covered = int(np.isin(image_ids, dets.image_id).sum())  # a table lookup: milliseconds at 786k
    if covered == len(image_ids):
        return
    results = f"{os.fspath(source)}: detections" if isinstance(source, (str, os.PathLike)) else "detections"
    warnings.warn(f"{results} cover {covered} of the {len(image_ids)} images of {gt.source or 'the ground truth'}; "
                  f"the other {len(image_ids) - covered} count as images where nothing was detected "
                  "(is the results file complete, and for this ground truth?)", PartialResultsWarning, stacklevel=3)


def _check_thresholds(iou_thrs: Sequence[float]) -> np.ndarray:
    thresholds = np.asarray(iou_thrs, dtype=np.float64).reshape(-1)
    if len(thresholds) == 0 or not np.all((thresholds > 0) & (thresholds <= 1)):
        raise ValueError(f"iou_thrs must be numbers in (0, 1], got {list(iou_thrs)}")
    return thresholds


def _percent(values: np.ndarray) -> np.ndarray:
    return np.where(values == -1, -1.0, values * 100)


def _mean_defined(curves: np.ndarray) -> np.ndarray:
    """Mean over the category axis (2) of the defined (> −1) curves; −1 where none is defined."""
    defined = (curves > -1).all(axis=-1, keepdims=True)
    count = defined.sum(axis=2)
    total = np.where(defined, curves, 0).sum(axis=2)
    return np.where(count > 0, total / np.maximum(count, 1), -1.0)


def _miss_rate(recall: np.ndarray) -> np.ndarray:
    mean_recall = _mean_defined(recall)
    return np.where(mean_recall == -1, -1.0, 1 - mean_recall)
