"""torch Datasets over annotation sets: full images or tiles read straight from the full image.

A tile entry (an image with `corner`, reference §2) is cropped from its full image file on the fly:
no sub-image files are written. Targets speak COCO category ids; label offsets live in the models.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from tinysm.data.annotations import CocoAnnotations
from tinysm.data.images import read_rgb

Target = dict[str, Any]
Transform = Callable[[torch.Tensor, Target], tuple[torch.Tensor, Target]]


class DetectionDataset(Dataset):
    """(image, target) pairs: `image` a uint8 3×H×W `tv_tensors.Image`, `target` a dict with
    `boxes` (xyxy `BoundingBoxes`), `labels` (COCO category ids), `ignore` (crowd/ignore/uncertain),
    `image_id`.

    `drop_ignored=True` removes ignore-flagged boxes from the target (training, reference §1.2);
    `transforms` take and return (image, target).
    """

    def __init__(self, annotations: CocoAnnotations, image_root: str | Path | None = None,
                 transforms: Transform | None = None, drop_ignored: bool = False):
        root = image_root if image_root is not None else annotations.image_root
        if root is None:
            raise ValueError(f"{annotations.source}: no image_root given for the images of this file")
        self.annotations = annotations
        self.image_root = Path(root)
        self.transforms = transforms
        self.drop_ignored = drop_ignored
        self._cached: tuple[str, torch.Tensor] | None = None  # consecutive tiles share one decode

    def __len__(self) -> int:
        return len(self.annotations.images)

    def read_pixels(self, index: int) -> torch.Tensor:
        """The uint8 3×H×W pixels of entry `index` (its tile when it has a corner)."""
        record = self.annotations.images[index]
        path = str(self.image_root / record.file_name)
        if self._cached is None or self._cached[0] != path:
            self._cached = (path, read_rgb(path))
        x1, y1, x2, y2 = record.region
        return self._cached[1][:, y1:y2, x1:x2]

    def target(self, index: int) -> Target:
        record = self.annotations.images[index]
        anns = self.annotations.annotations_by_image[record.id]
        if self.drop_ignored:
            anns = [a for a in anns if not a.is_ignored]
        boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a.bbox for a in anns)],
                             dtype=torch.float32).reshape(-1, 4)
        height, width = record.region[3] - record.region[1], record.region[2] - record.region[0]
        return {
            "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(height, width)),
            "labels": torch.tensor([a.category_id for a in anns], dtype=torch.int64),
            "ignore": torch.tensor([a.is_ignored for a in anns], dtype=torch.bool),
            "image_id": record.id,
        }

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Target]:
        image = tv_tensors.Image(self.read_pixels(index).clone())
        target = self.target(index)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target


def collate_detection(batch: list[tuple[torch.Tensor, Target]]) -> tuple[list[torch.Tensor], list[Target]]:
    """Variable-size images stay a list (torchvision's detection models pad them)."""
    images, targets = zip(*batch)
    return list(images), list(targets)
