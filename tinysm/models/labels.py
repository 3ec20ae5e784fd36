"""COCO category ids outside the model, contiguous class indices inside (reference §7 label offsets).

Faster-FPN reserves index 0 for background (classes are 1..K); RetinaNet has no background
(classes are 0..K-1). The rest of tinysm only ever sees COCO category ids.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor


class CocoLabelsMixin:
    """Mixin for a torchvision detector: maps target labels in and detection labels out."""

    label_offset: int  # index of the first real class inside the model

    def register_categories(self, category_ids: Sequence[int]) -> None:
        """Remember the COCO ids the model's classes stand for, in class order."""
        ids = [int(i) for i in category_ids]
        if not ids or len(set(ids)) != len(ids) or min(ids) < 0:
            raise ValueError(f"category_ids must be distinct non-negative integers, got {list(category_ids)}")
        lookup = torch.full((max(ids) + 1,), -1, dtype=torch.int64)
        lookup[ids] = torch.arange(len(ids)) + self.label_offset
        # Not persistent: a checkpoint transferred to another class set must not carry its ids over.
        self.register_buffer("category_ids", torch.tensor(ids), persistent=False)
        self.register_buffer("class_index_of_id", lookup, persistent=False)

    def targets_to_classes(self, targets: list[dict[str, Tensor]]) -> list[dict[str, Tensor]]:
        """Targets with plain float boxes and labels turned from COCO ids into class indices."""
        converted = []
        for target in targets:
            labels = target["labels"].to(self.class_index_of_id.device)
            known = (labels >= 0) & (labels < len(self.class_index_of_id))
            classes = torch.full_like(labels, -1)
            classes[known] = self.class_index_of_id[labels[known]]
            if (classes < 0).any():
                unknown = sorted(set(labels[classes < 0].tolist()))
                raise ValueError(f"target labels {unknown} are not among the model's category ids "
                                 f"{self.category_ids.tolist()}")
            boxes = target["boxes"].as_subclass(Tensor).to(torch.float32)
            converted.append({"boxes": boxes, "labels": classes})
        return converted

    def detections_to_coco(self, detections: list[dict[str, Tensor]]) -> list[dict[str, Tensor]]:
        """Detections with float32 boxes/scores and COCO category ids as labels."""
        return [{"boxes": d["boxes"].float(), "scores": d["scores"].float(),
                 "labels": self.category_ids[d["labels"] - self.label_offset]} for d in detections]

    def forward(self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None):
        """Losses (train) or detections with COCO ids (eval) of the wrapped torchvision detector."""
        if targets is not None:
            targets = self.targets_to_classes(targets)
        output = super().forward(images, targets)
        return output if self.training else self.detections_to_coco(output)
