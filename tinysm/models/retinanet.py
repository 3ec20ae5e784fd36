"""Adaptive RetinaNet for tiny persons (reference §7), on torchvision's RetinaNet.

"Adaptive": the pyramid starts at P2 (stride 4) and its top level P6 is a conv on C5, so anchors
run from 8 px to about 203 px instead of RetinaNet's 32 px and up.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import torch
from torch import Tensor
from torchvision.models.detection import RetinaNet
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.ops import batched_nms, clip_boxes_to_image

from tinysm.models.anchors import anchor_generator
from tinysm.models.backbone import build_resnet_fpn
from tinysm.models.components import (
    BatchNormalisedRetinaNetHead, Float32BoxCoder, LowQualityFloorMatcher, NativeScaleTransform,
)
from tinysm.models.labels import CocoLabelsMixin


@dataclass(frozen=True)
class AdaptiveRetinaNetSettings:
    """Every knob of reference §7's Adaptive RetinaNet; defaults are the paper's values."""

    fpn_channels: int = 256
    anchor_strides: tuple[int, ...] = (4, 8, 16, 32, 64)  # P2..P6
    octave_base_scale: float = 2.0
    scales_per_octave: int = 3
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    round_anchors: bool = False  # True: torchvision's generator (whole-pixel shapes, strides from the padded size)
    fg_iou_thresh: float = 0.5
    bg_iou_thresh: float = 0.4
    low_quality_floor: float = 0.0  # any IoU, as mmdetection's min_pos_iou=0 and torchvision
    score_thresh: float = 0.05
    nms_thresh: float = 0.5
    topk_candidates: int = 2000  # per level, before NMS
    detections_per_img: int = 1000  # torchvision's 300 would cut crowded tiles
    # L1, the reference's box loss (reference §7.1: mmdetection's L1Loss, weight 1); smooth-L1 and GIoU
    # are options. Focal loss α 0.25, γ 2 are torchvision's fixed values.
    box_loss: Literal["l1", "smooth_l1", "giou"] = "l1"
    # reference §7.1: both losses over the positives of the whole batch ("batch", the reference's);
    # "image" is torchvision's per-image normalisation, averaged over the images.
    loss_normalisation: Literal["batch", "image"] = "batch"

    def anchor_sizes(self) -> tuple[tuple[float, ...], ...]:
        """Per level: stride · octave_base · 2^(i / scales_per_octave), i < scales_per_octave."""
        return tuple(tuple(stride * self.octave_base_scale * 2 ** (i / self.scales_per_octave)
                           for i in range(self.scales_per_octave)) for stride in self.anchor_strides)


class AdaptiveRetinaNet(CocoLabelsMixin, RetinaNet):
    """torchvision RetinaNet speaking COCO category ids, whose NMS can be deferred to the tile merge."""

    label_offset = 0
    merge_variant = "one_stage"  # reference §2.3: pool raw tile candidates, one NMS, keep ≤ 1000

    def forward(self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None):
        """Losses (train) or final detections with COCO ids (eval)."""
        output = super().forward(images, targets)
        return output if self.training else [self.final_nms(d) for d in output]

    def tile_detections(self, images: list[Tensor]) -> list[dict[str, Tensor]]:
        """Raw per-tile candidates before NMS, for `merge_tile_detections` (reference §2.3 one-stage)."""
        return super().forward(images)

    def final_nms(self, candidates: dict[str, Tensor]) -> dict[str, Tensor]:
        """Per-class NMS over one image's candidates, best `detections_per_img` kept."""
        keep = batched_nms(candidates["boxes"], candidates["scores"], candidates["labels"], self.nms_thresh)
        keep = keep[: self.detections_per_img]
        return {key: value[keep] for key, value in candidates.items()}

    def postprocess_detections(self, head_outputs: dict[str, list[Tensor]], anchors: list[list[Tensor]],
                               image_shapes: list[tuple[int, int]]) -> list[dict[str, Tensor]]:
        """Per image, the top `topk_candidates` of each level scoring above `score_thresh`, decoded
        in float32 and clipped; torchvision's NMS is left to `final_nms` or the tile merge."""
        candidates = []
        for index, image_shape in enumerate(image_shapes):
            boxes, scores, labels = [], [], []
            for logits, regression, level_anchors in zip(head_outputs["cls_logits"],
                                                         head_outputs["bbox_regression"], anchors[index]):
                num_classes = logits.shape[-1]
                level_scores = torch.sigmoid(logits[index].float()).flatten()
                above = torch.where(level_scores > self.score_thresh)[0]
                top_scores, order = level_scores[above].topk(min(self.topk_candidates, len(above)))
                flat_index = above[order]
                anchor_index = flat_index // num_classes
                decoded = self.box_coder.decode_single(regression[index][anchor_index], level_anchors[anchor_index])
                boxes.append(clip_boxes_to_image(decoded, image_shape))
                scores.append(top_scores)
                labels.append(flat_index % num_classes)
            candidates.append({"boxes": torch.cat(boxes), "scores": torch.cat(scores), "labels": torch.cat(labels)})
        return candidates


def build_adaptive_retinanet(num_classes: int, category_ids: Sequence[int], backbone: str,
                             backbone_weights: str | Path | None, trainable_backbone: bool,
                             settings: AdaptiveRetinaNetSettings,
                             bn_affine_trainable: bool = False) -> AdaptiveRetinaNet:
    """An Adaptive RetinaNet with every setting of reference §7 (`bn_affine_trainable`: see `build_resnet_fpn`)."""
    s = settings
    sizes = s.anchor_sizes()
    if len(sizes) != 5:
        raise ValueError(f"anchor_strides must name the 5 levels P2..P6, got {s.anchor_strides}")
    body = build_resnet_fpn(backbone, backbone_weights, s.fpn_channels, p6="conv_c5",
                            trainable_backbone=trainable_backbone, bn_affine_trainable=bn_affine_trainable)
    anchors = anchor_generator(sizes, s.aspect_ratios, strides=s.anchor_strides, round_anchors=s.round_anchors)
    head_class = BatchNormalisedRetinaNetHead if s.loss_normalisation == "batch" else RetinaNetHead
    head = head_class(s.fpn_channels, anchors.num_anchors_per_location()[0], num_classes)
    model = AdaptiveRetinaNet(
        body, num_classes, anchor_generator=anchors, head=head,
        proposal_matcher=LowQualityFloorMatcher(s.fg_iou_thresh, s.bg_iou_thresh, s.low_quality_floor),
        score_thresh=s.score_thresh, nms_thresh=s.nms_thresh, detections_per_img=s.detections_per_img,
        topk_candidates=s.topk_candidates,
    )
    model.transform = NativeScaleTransform()
    model.box_coder = Float32BoxCoder(model.box_coder.weights)
    model.head.regression_head.box_coder = Float32BoxCoder(model.head.regression_head.box_coder.weights)
    # torchvision exposes the box loss only through this attribute (its own v2 builder sets it too).
    model.head.regression_head._loss_type = s.box_loss
    model.register_categories(category_ids)
    return model
