"""`build_detector`: the one entry point from a detector name to a configured model (reference §7)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from torch import nn

from tinysm.config import config_from_mapping
from tinysm.models.faster_fpn import FasterFPN, FasterFPNSettings, build_faster_fpn
from tinysm.models.retinanet import AdaptiveRetinaNet, AdaptiveRetinaNetSettings, build_adaptive_retinanet

@dataclass(frozen=True)
class DetectorEntry:
    """What the rest of tinysm needs to know about one detector, in one place."""

    label: str                       # as the paper's tables name it
    settings: type                   # the frozen dataclass of its knobs (defaults: reference §7)
    build: Callable[..., nn.Module]  # (num_classes, category_ids, backbone, weights, trainable_backbone, settings)
    model_class: type                # its `merge_variant` says how tile detections merge (reference §2.3)
    clip_grad_norm: float | None     # max-norm clipping when fine-tuning the paper's variant (reference §7.1)

    @property
    def merge_variant(self) -> str:
        return self.model_class.merge_variant


# A new detector: its module (settings dataclass + builder + model class) and one entry here.
DETECTORS: dict[str, DetectorEntry] = {
    "faster_fpn": DetectorEntry("Faster-FPN", FasterFPNSettings, build_faster_fpn, FasterFPN, None),
    # "-c" of Adap RetinaNet-c: gradient clipping at max-norm 1 while fine-tuning (reference §7).
    "adaptive_retinanet": DetectorEntry("Adap RetinaNet-c", AdaptiveRetinaNetSettings, build_adaptive_retinanet,
                                        AdaptiveRetinaNet, 1.0),
}


def build_detector(name: str, num_classes: int, backbone: str = "resnet50",
                   backbone_weights: str | Path | None = None, category_ids: Sequence[int] | None = None,
                   trainable_backbone: bool = False, bn_affine_trainable: bool = False, **overrides: Any) -> nn.Module:
    """A `faster_fpn` or `adaptive_retinanet` detector with reference §7's settings, `overrides` on top.

    `trainable_backbone`: BatchNorm trains and no stage is frozen (see `tinysm.models.backbone`), the
    rule when no pre-trained tensor will ever be loaded; the default keeps reference §7's freezing.
    `bn_affine_trainable`: BatchNorm weight and bias train in layer2..4 while its statistics stay
    frozen, as in the reference's COCO pre-training (reference §7.1); the default freezes them
    (fine-tuning). An error together with `trainable_backbone`.

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
    entry = DETECTORS[name]
    settings = config_from_mapping(entry.settings, overrides, where=f"build_detector({name!r}) overrides")
    return entry.build(num_classes, ids, backbone, backbone_weights, trainable_backbone, settings,
                       bn_affine_trainable=bn_affine_trainable)
