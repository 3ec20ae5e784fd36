"""Faster R-CNN with FPN configured for tiny persons (reference §7), on torchvision's FasterRCNN."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from torch import Tensor
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.faster_rcnn import RPNHead, TwoMLPHead

from tinysm.models.anchors import anchor_generator
from tinysm.models.backbone import build_resnet_fpn
from tinysm.models.components import (
    AlignedMultiScaleRoIAlign, Float32BoxCoder, Float32FastRCNNPredictor, LowQualityFloorMatcher,
    NativeScaleTransform,
)
from tinysm.models.initialisation import BoxHeadInit, init_faster_box_layers_
from tinysm.models.labels import CocoLabelsMixin
from tinysm.models.losses import BoxLoss, BoxLossRegionProposalNetwork, BoxLossRoIHeads


@dataclass(frozen=True)
class FasterFPNSettings:
    """Every knob of reference §7's Faster-FPN; defaults are the paper's values."""

    fpn_channels: int = 256
    anchor_sizes: tuple[int, ...] = (8, 16, 32, 64, 128)  # one size per level P2..P6
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    round_anchors: bool = False  # True: torchvision's generator (whole-pixel shapes, strides from the padded size)
    rpn_pre_nms_top_n_train: int = 2000  # per level
    rpn_post_nms_top_n_train: int = 1000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_test: int = 1000
    rpn_nms_thresh: float = 0.7
    rpn_fg_iou_thresh: float = 0.7
    rpn_bg_iou_thresh: float = 0.3
    rpn_low_quality_floor: float = 0.3
    rpn_batch_size_per_image: int = 256
    rpn_positive_fraction: float = 0.5
    roi_output_size: int = 7
    roi_sampling_ratio: int = 0  # adaptive: ceil(RoI side / output side) samples per bin (reference §7.1)
    representation_size: int = 1024  # the 2×1024 FC head
    box_batch_size_per_image: int = 512
    box_positive_fraction: float = 0.25
    box_fg_iou_thresh: float = 0.5
    box_bg_iou_thresh: float = 0.5
    score_thresh: float = 0.05
    nms_thresh: float = 0.5
    # torchvision's default of 100 per image loses persons on crowded tiles; 1000 proposals × one
    # class can give at most 1000, so this is "no cap" for the paper's one-class runs.
    detections_per_img: int = 1000
    # Box regression loss of both the RPN and the RoI head: L1, the reference's (reference §7.1:
    # mmdetection's L1Loss, weight 1), or torchvision's smooth-L1 with β = 1/9.
    box_loss: BoxLoss = "l1"
    # Initial values of the two shared FCs and the class/box predictors (see BoxHeadInit): reference §7.1's
    # Xavier-uniform FCs with N(0, 0.01) scores and N(0, 0.001) deltas, or all four Xavier-normal.
    box_head_init: BoxHeadInit = "normal_predictors"


class FasterFPN(CocoLabelsMixin, FasterRCNN):
    """torchvision FasterRCNN speaking COCO category ids; class 0 inside is background."""

    label_offset = 1
    merge_variant = "two_stage"  # reference §2.3: per-tile NMS, then a global NMS, no cap

    def tile_detections(self, images: list[Tensor]) -> list[dict[str, Tensor]]:
        """Per-tile detections for `merge_tile_detections` (reference §2.3): the usual NMS'd output."""
        return self(images)


def build_faster_fpn(num_classes: int, category_ids: Sequence[int], backbone: str,
                     backbone_weights: str | Path | None, trainable_backbone: bool, settings: FasterFPNSettings,
                     bn_affine_trainable: bool = False) -> FasterFPN:
    """A Faster-FPN with every setting of reference §7 (`bn_affine_trainable`: see `build_resnet_fpn`)."""
    s = settings
    body = build_resnet_fpn(backbone, backbone_weights, s.fpn_channels, trainable_backbone=trainable_backbone,
                            bn_affine_trainable=bn_affine_trainable)  # P6 = max-pool of P5
    anchors = anchor_generator(tuple((size,) for size in s.anchor_sizes), s.aspect_ratios,
                               strides=(4, 8, 16, 32, 64), round_anchors=s.round_anchors)  # P2..P6
    rpn_head = RPNHead(s.fpn_channels, anchors.num_anchors_per_location()[0])
    roi_pool = AlignedMultiScaleRoIAlign(["0", "1", "2", "3"], strides=[4, 8, 16, 32],
                                         output_size=s.roi_output_size, sampling_ratio=s.roi_sampling_ratio)
    box_head = TwoMLPHead(s.fpn_channels * s.roi_output_size ** 2, s.representation_size)
    box_predictor = Float32FastRCNNPredictor(s.representation_size, num_classes + 1)
    init_faster_box_layers_(box_head, box_predictor, s.box_head_init)
    model = FasterFPN(body, num_classes=None, rpn_anchor_generator=anchors, rpn_head=rpn_head,
                      box_roi_pool=roi_pool, box_head=box_head, box_predictor=box_predictor)
    # torchvision's constructor cannot choose the RPN's and RoI heads' classes (their box loss), so
    # both are rebuilt here around the same parts, with every setting.
    model.rpn = BoxLossRegionProposalNetwork(
        anchors, rpn_head, s.rpn_fg_iou_thresh, s.rpn_bg_iou_thresh, s.rpn_batch_size_per_image,
        s.rpn_positive_fraction,
        pre_nms_top_n={"training": s.rpn_pre_nms_top_n_train, "testing": s.rpn_pre_nms_top_n_test},
        post_nms_top_n={"training": s.rpn_post_nms_top_n_train, "testing": s.rpn_post_nms_top_n_test},
        nms_thresh=s.rpn_nms_thresh, box_loss=s.box_loss,
    )
    model.roi_heads = BoxLossRoIHeads(
        roi_pool, box_head, box_predictor, s.box_fg_iou_thresh, s.box_bg_iou_thresh,
        s.box_batch_size_per_image, s.box_positive_fraction, bbox_reg_weights=None,
        score_thresh=s.score_thresh, nms_thresh=s.nms_thresh, detections_per_img=s.detections_per_img,
        box_loss=s.box_loss,
    )
    model.transform = NativeScaleTransform()
    model.rpn.proposal_matcher = LowQualityFloorMatcher(s.rpn_fg_iou_thresh, s.rpn_bg_iou_thresh,
                                                        s.rpn_low_quality_floor)
    model.rpn.box_coder = Float32BoxCoder(model.rpn.box_coder.weights)
    model.roi_heads.box_coder = Float32BoxCoder(model.roi_heads.box_coder.weights)
    model.register_categories(category_ids)
    return model
