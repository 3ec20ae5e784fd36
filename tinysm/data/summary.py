"""What an annotation file holds: images, boxes per flag, and the size distribution (reference §1.2–§1.3).

Works on any COCO/TinyPerson file, real or synthetic, so the two can be compared line by line.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tinysm.data.annotations import CocoAnnotations, dense_image_ids

PERCENTILES = (5, 25, 50, 75, 95)
# Half-open so that they partition the sizes; the names and edges are the MR setups of reference §6.2
# (whose own ranges are closed and overlap at the edges).
SIZE_RANGES = (("<2", 0.0, 2.0), ("tiny1", 2.0, 8.0), ("tiny2", 8.0, 12.0), ("tiny3", 12.0, 20.0),
               ("small", 20.0, 32.0), (">=32", 32.0, math.inf))
# Printed name -> the flag of reference §1.2 it counts.
FLAGS = {"ignore": "ignore", "uncertain": "uncertain", "crowd": "iscrowd", "logo": "logo", "dense": "in_dense_image"}


@dataclass(frozen=True)
class DatasetSummary:
    """Counts and sizes of one annotation file.

    `regular` boxes are those evaluation scores (not crowd, ignore or uncertain, reference §6.1); the
    flag counts overlap (an ignore box may also be a logo), so they need not add up. `dense` counts
    boxes flagged `in_dense_image`; `dense_images` also counts images with more than 200 boxes.
    Sizes are √(w·h) of the regular boxes' bbox.
    """

    name: str
    images: int
    images_without_boxes: int
    dense_images: int
    boxes: int
    regular: int
    flags: dict[str, int]
    categories: dict[str, int]
    size_percentiles: dict[int, float]
    size_fractions: dict[str, float]

    def format(self) -> str:
        """A few human-readable lines."""
        percentiles = "  ".join(f"p{p} {_number(v)}" for p, v in self.size_percentiles.items())
        fractions = " · ".join(f"{name} {100 * v:.1f}%" if self.regular else f"{name} –"
                               for name, v in self.size_fractions.items())
        return "\n".join([
            f"{self.name}: {self.images:,} images ({self.images_without_boxes:,} without boxes, "
            f"{self.dense_images:,} dense), {self.boxes:,} boxes",
            "  regular {:,} · {}".format(self.regular, " · ".join(f"{k} {v:,}" for k, v in self.flags.items())),
            "  categories: " + " · ".join(f"{k} {v:,}" for k, v in self.categories.items()),
            f"  √(wh) of regular boxes (px): {percentiles}",
            f"  size ranges: {fractions}",
        ])


def _number(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.1f}"


def summarize(annotations: CocoAnnotations, name: str | None = None) -> DatasetSummary:
    """Count images, boxes per flag and per category, and the √(w·h) distribution of regular boxes."""
    cols = annotations.columns()
    regular = ~(cols["iscrowd"] | cols["ignore"] | cols["uncertain"])
    sizes = np.sqrt(cols["bbox"][regular, 2] * cols["bbox"][regular, 3])
    names = {c["id"]: c.get("name", str(c["id"])) for c in annotations.categories}
    ids, counts = np.unique(cols["category_id"], return_counts=True)
    with_boxes = set(np.unique(cols["image_id"]).tolist())
    return DatasetSummary(
        name=name or (annotations.source.name if annotations.source is not None else "annotations"),
        images=len(annotations.images),
        images_without_boxes=sum(image.id not in with_boxes for image in annotations.images),
        dense_images=len(dense_image_ids(annotations)),
        boxes=len(annotations.annotations),
        regular=int(regular.sum()),
        flags={label: int(cols[flag].sum()) for label, flag in FLAGS.items()},
        categories={names.get(i, str(i)): int(n) for i, n in zip(ids.tolist(), counts.tolist())},
        size_percentiles={p: float(np.percentile(sizes, p)) if len(sizes) else math.nan for p in PERCENTILES},
        size_fractions={label: float(((sizes >= lo) & (sizes < hi)).mean()) if len(sizes) else 0.0
                        for label, lo, hi in SIZE_RANGES},
    )
