"""Columns of one category's GTs and detections, and their overlapping pairs (reference §6.1, §6.2).

Everything downstream works on these arrays: the GT file is read once, not once per range or
setup. Only (detection, GT) pairs of the same image whose boxes intersect are kept; every other
pair has overlap 0 and can never match (all thresholds are > 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinysm.data.annotations import CocoAnnotations
from tinysm.data.detections import Detections

_PAIRS_PER_CHUNK = 4_000_000  # bounds the memory of the detection × GT cross product


@dataclass(frozen=True)
class GroundTruthColumns:
    """GT boxes sorted by image (position in the sorted image ids), then file order."""

    image: np.ndarray        # int64 image index
    ann_id: np.ndarray       # int64 annotation id (the id-0 quirk of reference §6.3 needs it)
    category_id: np.ndarray
    bbox: np.ndarray         # N×4 float64 x, y, w, h
    area: np.ndarray         # the file's `area` field (ranges and the IoD formula use it, reference §6.1)
    size: np.ndarray         # the `size` key when present, else √area (reference §6.2)
    crowd: np.ndarray        # bool
    flagged: np.ndarray      # bool: `ignore` or `uncertain` (reference §1.2)

    @classmethod
    def from_annotations(cls, gt: CocoAnnotations, image_ids: np.ndarray) -> "GroundTruthColumns":
        """All boxes of `gt`; `image_ids` is the sorted array of the file's image ids."""
        cols = gt.columns()
        size = np.fromiter((float(a.extra.get("size", np.nan)) for a in gt.annotations), np.float64,
                           len(gt.annotations))
        size = np.where(np.isnan(size), np.sqrt(cols["area"]), size)
        image = np.searchsorted(image_ids, cols["image_id"])
        order = np.argsort(image, kind="stable")
        return cls(image[order], cols["id"][order], cols["category_id"][order], cols["bbox"][order],
                   cols["area"][order], size[order], cols["iscrowd"][order],
                   (cols["ignore"] | cols["uncertain"])[order])

    def __len__(self) -> int:
        return len(self.ann_id)

    def select(self, mask: np.ndarray) -> "GroundTruthColumns":
        """The rows where `mask` is true (order kept)."""
        return GroundTruthColumns(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))


@dataclass(frozen=True)
class RankedDetections:
    """Detections sorted by image, then score descending (stable: ties in input order), reference §6.1."""

    image: np.ndarray    # int64 image index
    bbox: np.ndarray     # N×4 float64
    score: np.ndarray
    rank: np.ndarray     # position in its image's ranking, 0 = best

    @classmethod
    def from_detections(cls, dets: Detections, mask: np.ndarray, image_ids: np.ndarray,
                        max_rank: int) -> "RankedDetections":
        """The detections under `mask`, each image cut to its `max_rank` best."""
        index = np.flatnonzero(mask)
        image = np.searchsorted(image_ids, dets.image_id[index])
        order = np.lexsort((-dets.score[index], image))  # lexsort is stable: equal scores keep input order
        image = image[order]
        first_of_image = np.r_[0, np.flatnonzero(np.diff(image)) + 1]
        rank = np.arange(len(image)) - np.repeat(first_of_image, np.diff(np.r_[first_of_image, len(image)]))
        keep = rank < max_rank
        index = index[order[keep]]
        return cls(image[keep], dets.bbox[index], dets.score[index], rank[keep])

    @property
    def area(self) -> np.ndarray:
        """w·h (reference §6.1: the detection's area is never a stored field)."""
        return self.bbox[:, 2] * self.bbox[:, 3]

    def __len__(self) -> int:
        return len(self.score)


@dataclass(frozen=True)
class Candidates:
    """Intersecting pairs, one row per detection that has any, padded to K columns (GT index -1)."""

    det: np.ndarray   # (n,) detection index
    gt: np.ndarray    # (n, K) GT index in file order within the image, -1 for padding
    iou: np.ndarray   # (n, K) intersection / union, computed as the reference does
    iod: np.ndarray   # (n, K) intersection / detection area (w·h)

    def __len__(self) -> int:
        return len(self.det)


def overlapping_pairs(gt: GroundTruthColumns, dets: RankedDetections, n_images: int) -> Candidates:
    """All (detection, GT) pairs of the same image with a positive intersection, with IoU and IoD."""
    first, last = _sweep_ranges(gt, dets, n_images)
    order = np.lexsort((gt.bbox[:, 0], gt.image))        # the GTs by image, then left edge
    per_det = last - first
    ends = np.cumsum(per_det)
    total = int(ends[-1]) if len(ends) else 0
    splits = np.searchsorted(ends, np.arange(_PAIRS_PER_CHUNK, total, _PAIRS_PER_CHUNK))
    bounds = np.unique(np.concatenate([[0], splits, [len(dets)]]))
    chunks = [_pairs_of(gt, dets, np.arange(a, b), first, per_det, order) for a, b in zip(bounds[:-1], bounds[1:])]
    if not chunks:
        return Candidates(np.zeros(0, np.int64), np.zeros((0, 0), np.int64), np.zeros((0, 0)), np.zeros((0, 0)))
    det, gt_index, iou, iod = (np.concatenate(parts) for parts in zip(*chunks))
    # Columns in GT file order: ties in overlap go to the later GT (reference §6.1), so the order matters.
    by_gt = np.lexsort((gt_index, det))
    return _pad_by_detection(det[by_gt], gt_index[by_gt], iou[by_gt], iod[by_gt])


def _sweep_ranges(gt: GroundTruthColumns, dets: RankedDetections, n_images: int) -> tuple[np.ndarray, np.ndarray]:
    """For each detection, the slice of the (image, left edge)-sorted GTs that may intersect it.

    A tiny box in a 1920-px frame meets few GTs along x, so instead of every GT of the image a
    detection is paired with those whose left edge lies in [x1 - widest GT of the image, x2]
    (a superset: the exact test follows). One searchsorted over all images uses the key
    image·span + x, with span wider than every coordinate range so that images never mix.
    """
    starts = np.searchsorted(gt.image, np.arange(n_images + 1))
    first, last = starts[dets.image], starts[dets.image + 1]
    if len(gt) == 0 or len(dets) == 0:
        return first, last
    widest = np.zeros(n_images)
    np.maximum.at(widest, gt.image, gt.bbox[:, 2])
    left = min(gt.bbox[:, 0].min(), dets.bbox[:, 0].min())
    right = max((gt.bbox[:, 0] + gt.bbox[:, 2]).max(), (dets.bbox[:, 0] + dets.bbox[:, 2]).max())
    span = right - left + widest.max() + 4
    if not np.isfinite(span) or span * n_images > 2.0 ** 40:
        return first, last  # coordinates too large for an exact float key: pair with every GT of the image
    gt_key = np.sort(gt.image * span + (gt.bbox[:, 0] - left))
    base = dets.image * span - left
    # One pixel of slack each side absorbs the key's rounding (its ulp is < 2^-12 here).
    low = np.searchsorted(gt_key, base + dets.bbox[:, 0] - widest[dets.image] - 1, side="left")
    high = np.searchsorted(gt_key, base + dets.bbox[:, 0] + dets.bbox[:, 2] + 1, side="right")
    return np.clip(low, first, last), np.clip(high, first, last)


def _pairs_of(gt: GroundTruthColumns, dets: RankedDetections, det_index: np.ndarray,
              first: np.ndarray, per_det: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, ...]:
    counts = per_det[det_index]
    det = np.repeat(det_index, counts)
    offsets = np.arange(len(det)) - np.repeat(np.cumsum(counts) - counts, counts)
    g = order[np.repeat(first[det_index], counts) + offsets]
    d_box, g_box = dets.bbox[det], gt.bbox[g]
    # The same operations in the same order as pycocotools' bbIou and the reference MR code, so
    # that overlaps (and thus every threshold decision) agree to the last bit.
    iw = np.minimum(d_box[:, 0] + d_box[:, 2], g_box[:, 0] + g_box[:, 2]) - np.maximum(d_box[:, 0], g_box[:, 0])
    ih = np.minimum(d_box[:, 1] + d_box[:, 3], g_box[:, 1] + g_box[:, 3]) - np.maximum(d_box[:, 1], g_box[:, 1])
    hit = (iw > 0) & (ih > 0)
    det, g, d_box, g_box = det[hit], g[hit], d_box[hit], g_box[hit]
    inter = iw[hit] * ih[hit]
    d_area = d_box[:, 2] * d_box[:, 3]
    g_area = g_box[:, 2] * g_box[:, 3]
    return det, g, inter / (d_area + g_area - inter), inter / d_area


def _pad_by_detection(det: np.ndarray, gt_index: np.ndarray, iou: np.ndarray, iod: np.ndarray) -> Candidates:
    rows, row_start, per_row = np.unique(det, return_index=True, return_counts=True)
    width = int(per_row.max()) if len(rows) else 0
    row = np.repeat(np.arange(len(rows)), per_row)
    column = np.arange(len(det)) - np.repeat(row_start, per_row)
    padded_gt = np.full((len(rows), width), -1, np.int64)
    padded_iou, padded_iod = np.zeros((len(rows), width)), np.zeros((len(rows), width))
    padded_gt[row, column], padded_iou[row, column], padded_iod[row, column] = gt_index, iou, iod
    return Candidates(rows, padded_gt, padded_iou, padded_iod)
