"""Boxes and small COCO-format annotation sets with log-normal object sizes, for the Scale Match tests."""
from __future__ import annotations

import numpy as np


def coco_with_sizes(seed: int, images: int, boxes_per_image: int, log_mean: float, log_sigma: float,
                    width: int = 1280, height: int = 720) -> dict:
    """`images` images of width×height, each with boxes of size √(wh) ~ exp(N(log_mean, log_sigma²))."""
    rng = np.random.RandomState(seed)
    image_entries, annotations = [], []
    for image_id in range(images):
        image_entries.append({"id": image_id, "file_name": f"{image_id}.jpg", "width": width, "height": height})
        sizes = np.minimum(np.exp(rng.normal(log_mean, log_sigma, boxes_per_image)), min(width, height) / 2)
        aspect = np.exp(rng.uniform(-0.7, 0.7, boxes_per_image))
        for size, ratio in zip(sizes, aspect):
            w, h = float(size * np.sqrt(ratio)), float(size / np.sqrt(ratio))
            x, y = float(rng.uniform(0, width - w)), float(rng.uniform(0, height - h))
            annotations.append({"id": len(annotations), "image_id": image_id, "category_id": 1,
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
    return {"images": image_entries, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}


def square(x: float, y: float, extent: float) -> list[float]:
    """An xyxy box whose +1-pixel extent (x2 − x1 + 1) is `extent` on both axes (reference §4 step 1)."""
    return [x, y, x + extent - 1, y + extent - 1]
