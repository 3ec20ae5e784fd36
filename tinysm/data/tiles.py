"""Tiles of reference §2: the grid (one source of truth for train cut, test cut and merge) and the cut.

TinyPerson frames are 1280×720 to 1920×1080; detectors see 640×512 tiles. A tile annotation set
keeps each full image's `file_name` and adds `corner: [x1, y1, x2, y2]` (the reference's format).
"""
from __future__ import annotations

import math
from dataclasses import replace

from tinysm.data.annotations import AnnotationError, BoxAnnotation, CocoAnnotations, ImageRecord

TEST_TILE = (640, 512)
TEST_OVERLAP = (100, 100)   # reference §2.1: test tiles
TRAIN_OVERLAP = (50, 50)    # reference §2.1: the released "old 640x512" training tiles
KEEP_RATIO = 0.7            # reference §2.2


def axis_offsets(length: int, tile: int, overlap: int) -> list[int]:
    """Tile start offsets along one axis (reference §2.1): stride tile−overlap, last tile flush with the border."""
    if tile <= 0 or overlap < 0 or overlap >= tile:
        raise ValueError(f"need tile > overlap >= 0, got tile={tile} overlap={overlap}")
    offsets: list[int] = []
    for offset in range(0, max(1, length - overlap), tile - overlap):
        if offset > 0:
            offset = min(length - tile, offset)
        if offset not in offsets:
            offsets.append(offset)
    return offsets


def tile_grid(width: int, height: int, tile: tuple[int, int] = TEST_TILE,
              overlap: tuple[int, int] = TEST_OVERLAP) -> list[tuple[int, int, int, int]]:
    """The (x1, y1, x2, y2) tiles of a width×height image, row by row (reference §2.1).

    Every tile is `tile` sized unless the image is smaller along an axis, in which case that
    axis has one tile covering the whole length.
    """
    xs = axis_offsets(width, tile[0], overlap[0])
    ys = axis_offsets(height, tile[1], overlap[1])
    return [(x, y, min(x + tile[0], width), min(y + tile[1], height)) for y in ys for x in xs]


def require_full_images(annotations: CocoAnnotations, user: str) -> None:
    """Refuse a tile ("corner") annotation file where `user` (predict, erase, cutting tiles) works on
    full images: its boxes are in tile coordinates and its entries repeat each frame, so running on
    it would write or score the wrong thing and still report success."""
    tiles = [image.id for image in annotations.images if image.corner is not None]
    if tiles:
        more = f" (and {len(tiles) - 1} more)" if len(tiles) > 1 else ""
        raise AnnotationError(annotations.source, f"image id {tiles[0]}{more}",
                              f"is a tile (it has a 'corner'); {user} works on full images: "
                              "give it the full-image annotation file")


def clip_to_tile(ann: BoxAnnotation, corner: tuple[int, int, int, int],
                 keep_ratio: float = KEEP_RATIO) -> BoxAnnotation | None:
    """The box in tile coordinates, or None when too little of it is inside (reference §2.2).

    Kept when sqrt(clipped area) / sqrt(original area) >= keep_ratio.
    """
    x, y, w, h = (float(v) for v in ann.bbox)
    cx1, cy1, cx2, cy2 = (float(v) for v in corner)
    x1, y1, x2, y2 = max(x, cx1), max(y, cy1), min(x + w, cx2), min(y + h, cy2)
    cw, ch = x2 - x1, y2 - y1
    if cw <= 0 or ch <= 0 or math.sqrt(cw * ch) / math.sqrt(w * h) < keep_ratio:
        return None
    return replace(ann, bbox=(x1 - cx1, y1 - cy1, cw, ch), area=cw * ch,
                   present=ann.present | {"area"}, extra=dict(ann.extra))


def cut_tiles(annotations: CocoAnnotations, tile: tuple[int, int] = TEST_TILE,
              overlap: tuple[int, int] = TRAIN_OVERLAP, keep_ratio: float = KEEP_RATIO,
              keep_empty: bool = False) -> CocoAnnotations:
    """Cut every full image into tiles and each box into the tiles that keep it (reference §2.2).

    Tile images get ids from 0 in order and keep the full image's `file_name`; annotation ids
    are renumbered from 0. Tiles without boxes are dropped unless `keep_empty`.
    """
    require_full_images(annotations, "cutting tiles")
    tile_images: list[ImageRecord] = []
    tile_annotations: list[BoxAnnotation] = []
    for image in annotations.images:
        boxes = annotations.annotations_by_image[image.id]
        for corner in tile_grid(image.width, image.height, tile, overlap):
            kept = [b for b in (clip_to_tile(a, corner, keep_ratio) for a in boxes) if b is not None]
            if not kept and not keep_empty:
                continue
            tile_id = len(tile_images)
            tile_images.append(ImageRecord(tile_id, image.file_name, corner[2] - corner[0],
                                           corner[3] - corner[1], corner, dict(image.extra)))
            for box in kept:
                tile_annotations.append(replace(box, id=len(tile_annotations), image_id=tile_id))
    return annotations.with_annotations(tile_annotations, tile_images)
