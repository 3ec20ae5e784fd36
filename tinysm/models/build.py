"""`build_detector`: the one entry point from a detector name to a configured model (SPEC §7)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from torch import nn

from tinysm.config import config_from_mapping
from tinysm.models.faster_fpn import FasterFPNSettings, build_faster_fpn
from tinysm.models.retinanet import AdaptiveRetinaNetSettings, build_adaptive_retinanet

DETECTORS = {
    "faster_fpn": (FasterFPNSettings, build_faster_fpn),
    "adaptive_retinanet": (AdaptiveRetinaNetSettings, build_adaptive_retinanet),
}


def build_detector(name: str, num_classes: int, backbone: str = "resnet50",
                   backbone_weights: str | Path | None = None, category_ids: Sequence[int] | None = None,
                   from_scratch: bool = False, bn_affine_trainable: bool = False, **overrides: Any) -> nn.Module:
    """A `faster_fpn` or `adaptive_retinanet` detector with SPEC §7's settings, `overrides` on top.

    `from_scratch`: no pre-trained tensor will ever be loaded (trainable BatchNorm, no frozen stage;
    see `tinysm.models.backbone`); the default keeps SPEC §7's freezing for pre-trained weights.
    `bn_affine_trainable`: BatchNorm weight and bias train in layer2..4 while its statistics stay
    frozen, as in the reference's COCO pre-training (SPEC §7.1); the default freezes them
    (fine-tuning). An error together with `from_scratch`.

    `category_ids` are the COCO ids of the classes (default 1..num_classes); `overrides` are fields
    of `FasterFPNSettings` / `AdaptiveRetinaNetSettings` (an unknown or mistyped one is an error).
    """
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose one of {sorted(DETECTORS)}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    ids = list(range(1, num_classes + 1)) if category_ids is None else list(category_ids)
    if len(ids) != num_classes:
        raise ValueError(f"{len(ids)} category_ids given for num_classes={num_classes}: {ids}")
    settings_class, build = DETECTORS[name]
    settings = config_from_mapping(settings_class, overrides, where=f"build_detector({name!r}) overrides")
    return build(num_classes, ids, backbone, backbone_weights, from_scratch, settings,
                 bn_affine_trainable=bn_affine_trainable)
