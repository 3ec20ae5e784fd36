"""Merging tile detections back into full-image detections (reference §2.3).

Every tile box is shifted by its tile's (x1, y1), then one class-agnostic NMS per image removes the
copies that overlapping tiles produce of the same object. The two-stage detector (Faster-FPN) first
runs NMS within each tile and keeps everything; the one-stage detector (RetinaNet) pools its raw
per-tile candidates into one NMS and keeps at most 1000 per image. Caps matter (reference §2.3): a full
image can hold 800+ persons.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from tinysm.data.annotations import AnnotationError, CocoAnnotations
from tinysm.data.detections import Detections, load_detections

TileOffsets = Mapping[int, tuple[int, int, int]]   # tile image id -> (full image id, x1, y1)


@dataclass(frozen=True)
class MergeConfig:
    """How tile detections become image detections (reference §2.3); `None` means no cap."""

    per_tile_nms: bool = True
    nms_iou: float = 0.5
    score_threshold: float = 0.05
    max_per_image: int | None = None

    @classmethod
    def two_stage(cls, max_per_image: int | None = None) -> "MergeConfig":
        """Faster-FPN: per-tile NMS 0.5, shift, global NMS 0.5, no cap."""
        return cls(per_tile_nms=True, max_per_image=max_per_image)

    @classmethod
    def one_stage(cls, max_per_image: int | None = 1000) -> "MergeConfig":
        """RetinaNet: pool raw per-tile candidates, shift, one NMS 0.5, keep at most 1000 per image."""
        return cls(per_tile_nms=False, max_per_image=max_per_image)


# The merge variants by name, as detectors declare them (`model.merge_variant`) and the CLI takes them.
MERGE_VARIANTS = {"two_stage": MergeConfig.two_stage, "one_stage": MergeConfig.one_stage}


def tile_offsets(tiles: CocoAnnotations, full_images: CocoAnnotations) -> dict[int, tuple[int, int, int]]:
    """tile id -> (full image id, x1, y1): tiles keep their image's `file_name` and add `corner` (reference §1.2)."""
    by_file = {image.file_name: image.id for image in full_images.images}
    offsets = {}
    for tile in tiles.images:
        if tile.file_name not in by_file:
            raise AnnotationError(tiles.source, f"image id {tile.id}",
                                  f"file_name {tile.file_name!r} is not an image of {full_images.source or 'the full-image file'}")
        x1, y1 = tile.corner[:2] if tile.corner is not None else (0, 0)
        offsets[tile.id] = (by_file[tile.file_name], x1, y1)
    return offsets


def merge_tile_detections(detections: Any, tiles: CocoAnnotations | TileOffsets,
                          full_images: CocoAnnotations | None = None,
                          config: MergeConfig = MergeConfig.two_stage()) -> Detections:
    """Per-tile detections (keyed by tile image id) -> per-image detections, sorted by image then score.

    `tiles` is the tile annotation file (then `full_images`, the full-image file, gives the image
    ids) or explicit offsets {tile id: (image id, x1, y1)}. `detections` is anything
    `load_detections` reads. `.to_results()` on the answer gives a COCO results list.
    """
    if isinstance(tiles, CocoAnnotations):
        if full_images is None:
            raise ValueError("merging with a tile annotation file needs the full-image file (full_images) for the image ids")
        tiles = tile_offsets(tiles, full_images)
    tile_ids = np.array(sorted(tiles), dtype=np.int64)
    table = np.array([tiles[int(t)] for t in tile_ids], dtype=np.int64).reshape(-1, 3)
    dets = load_detections(detections, tile_ids)

    keep = dets.score >= config.score_threshold
    tile = np.searchsorted(tile_ids, dets.image_id[keep])
    bbox, score, category = dets.bbox[keep], dets.score[keep], dets.category_id[keep]
    if config.per_tile_nms:
        kept = _nms(bbox, score, tile, config.nms_iou)
        tile, bbox, score, category = tile[kept], bbox[kept], score[kept], category[kept]
    image_id = table[tile, 0]
    # Shift x and y only: w and h are kept as given, so no rounding creeps into the sizes.
    bbox = bbox + np.column_stack([table[tile, 1:], np.zeros((len(tile), 2))])
    kept = _nms(bbox, score, image_id, config.nms_iou)
    image_id, bbox, score, category = image_id[kept], bbox[kept], score[kept], category[kept]

    order = np.lexsort((-score, image_id))
    image_id, bbox, score, category = image_id[order], bbox[order], score[order], category[order]
    if config.max_per_image is not None:
        rank = np.arange(len(image_id)) - np.searchsorted(image_id, image_id, side="left")
        capped = rank < config.max_per_image
        image_id, bbox, score, category = image_id[capped], bbox[capped], score[capped], category[capped]
    return Detections(image_id, category, bbox, score)


def _nms(bbox: np.ndarray, score: np.ndarray, group: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by class-agnostic NMS within each group (tile or image), best score first."""
    import torch  # heavy: only when merging
    from torchvision.ops import batched_nms

    if len(score) == 0:
        return np.zeros(0, np.int64)
    xyxy = torch.from_numpy(np.column_stack([bbox[:, :2], bbox[:, :2] + bbox[:, 2:]]))
    keep = batched_nms(xyxy, torch.from_numpy(score), torch.from_numpy(group), iou)
    return keep.numpy()
