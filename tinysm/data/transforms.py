"""Augmentation presets on the (image, target) pairs of `tinysm.data.datasets.DetectionDataset`.

Images come in as uint8 and leave as float32 in [0, 1]; ImageNet normalisation and padding to a
multiple of 32 happen inside the detector (reference §4 step 4, §7), so the presets never resize tiles.
"""
from __future__ import annotations

from typing import Callable

import torch
from torchvision.transforms import v2

from tinysm.data.datasets import Target

PairTransform = Callable[[torch.Tensor, Target], tuple[torch.Tensor, Target]]

FLIP_PROBABILITY = 0.5  # reference §4 step 4, §8


class EvalPreset(v2.Compose):
    """Test tiles and full images: pixels to float, nothing else (no resize, no flip: reference §2.1)."""

    def __init__(self) -> None:
        super().__init__([v2.ToDtype(torch.float32, scale=True)])


class TrainPreset(v2.Compose):
    """Fine-tuning / baseline on TinyPerson tiles (reference §8): horizontal flip 0.5, to float."""

    def __init__(self, flip_probability: float = FLIP_PROBABILITY) -> None:
        super().__init__([v2.RandomHorizontalFlip(flip_probability), v2.ToDtype(torch.float32, scale=True)])


class PretrainPreset(v2.Compose):
    """Pre-training on an external set (reference §4 step 4): Scale Match or Monotone Scale Match on the
    whole, variable-size image, then flip 0.5 and to float; no crop and no fixed size.

    `scale_match` is a `tinysm.scale_match.ScaleMatch` / `MonotoneScaleMatch` (any (image, target)
    callable); the flip draws from torch's stream, never from the Scale Match stream (reference §4).
    """

    def __init__(self, scale_match: PairTransform, flip_probability: float = FLIP_PROBABILITY) -> None:
        super().__init__([scale_match, v2.RandomHorizontalFlip(flip_probability),
                          v2.ToDtype(torch.float32, scale=True)])
        self.scale_match = scale_match
