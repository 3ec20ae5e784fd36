"""Small subclasses of torchvision's detection parts that close its gaps for tiny objects (reference §7).

Each class changes one behaviour and says why; everything else is torchvision's own code.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torchvision.models.detection._utils import BoxCoder, Matcher, _box_loss
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import FrozenBatchNorm2d, MultiScaleRoIAlign, roi_align, sigmoid_focal_loss
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class NativeScaleTransform(GeneralizedRCNNTransform):
    """Normalise with ImageNet mean/std and pad to a multiple of 32, never resize (reference §7).

    torchvision's transform rescales every image to `min_size`/`max_size`, in eval mode too
    (its `_skip_resize` only covers training): a 640×512 tile would be blown up to 800×1000 and
    every tiny person with it.
    """

    def __init__(self, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD, size_divisible: int = 32):
        # min_size/max_size are never read: resize() below is the identity.
        super().__init__(min_size=0, max_size=0, image_mean=list(image_mean), image_std=list(image_std),
                         size_divisible=size_divisible)

    def resize(self, image: Tensor, target: dict[str, Tensor] | None = None):
        return image, target

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(mean={self.image_mean}, std={self.image_std}, "
                f"pad_to={self.size_divisible}, no resize)")


class LowQualityFloorMatcher(Matcher):
    """Matcher whose low-quality matches follow mmdetection 2.x's MaxIoUAssigner (reference §7, §7.1).

    After the thresholds, every GT whose best IoU is ≥ `floor` (mmdetection's `min_pos_iou`: 0.3 in
    the RPN, 0 in the RetinaNet) claims every anchor achieving that best IoU (`gt_max_assign_all`),
    whatever the anchor was: negative, ignored, or already positive for another GT. The reference
    does this in a loop over the GTs in order, each claim overwriting the earlier ones, so an anchor
    claimed by several GTs goes to the last of them (the highest GT index), even if it overlaps an
    earlier one more.

    torchvision instead has no floor (every GT claims its best anchors, IoU 0.3 or not) and gives a
    claimed anchor to its own best-IoU GT: on the same IoUs, some anchors end up with another GT.
    """

    def __init__(self, high_threshold: float, low_threshold: float, floor: float):
        super().__init__(high_threshold, low_threshold, allow_low_quality_matches=True)
        self.floor = floor

    def set_low_quality_matches_(self, matches: Tensor, all_matches: Tensor, match_quality_matrix: Tensor) -> None:
        best = match_quality_matrix.max(dim=1, keepdim=True).values  # per GT
        claims = (match_quality_matrix == best) & (best >= self.floor)  # GT × anchor
        gt_number = torch.arange(1, len(claims) + 1, device=claims.device)[:, None]
        last_claim = (claims * gt_number).max(dim=0).values  # 1-based index of the last claiming GT, 0 if none
        claimed = last_claim > 0
        matches[claimed] = last_claim[claimed] - 1


class AffineFrozenBatchNorm2d(FrozenBatchNorm2d):
    """Frozen-statistics BatchNorm whose affine weight and bias train (COCO pre-training, reference §7.1).

    The reference normalises with fixed running statistics in every stage (`norm_eval=True`), but
    its COCO pre-training configs set the BatchNorm `requires_grad=True`, so γ and β learn there (and
    transfer). Here they are parameters; the statistics stay buffers that nothing updates, in train
    mode too. State-dict names are FrozenBatchNorm2d's, so checkpoints load either way round.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__(num_features, eps)
        weight, bias = self.weight, self.bias
        del self.weight, self.bias  # the buffers, replaced by parameters of the same names
        self.weight = torch.nn.Parameter(weight)
        self.bias = torch.nn.Parameter(bias)


class Float32BoxCoder(BoxCoder):
    """BoxCoder that decodes in float32 whatever the autocast dtype.

    torchvision casts the anchors to the dtype of the regression output: under bf16 autocast a
    coordinate near 600 px lands on a 4 px grid (8 mantissa bits), which destroys tiny boxes.
    """

    def decode_single(self, rel_codes: Tensor, boxes: Tensor) -> Tensor:
        with torch.autocast(rel_codes.device.type, enabled=False):
            return super().decode_single(rel_codes.float(), boxes.float())


class Float32FastRCNNPredictor(FastRCNNPredictor):
    """The class-score and box-delta layers run in float32, so scores keep their full resolution
    under autocast (bf16 scores tie in thousands and scramble the ranking that AP reads)."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        with torch.autocast(x.device.type, enabled=False):
            return super().forward(x.float())


class AlignedMultiScaleRoIAlign(MultiScaleRoIAlign):
    """Multi-level RoIAlign with `aligned=True` (the half-pixel correction, reference §7).

    torchvision's pooler hard-codes `aligned=False`, a half-pixel shift that is a large fraction
    of a 4-pixel person. Level rule as torchvision's (k0 = 4, canonical 224), which for P2..P5 is
    mmdetection's floor(log2(√area / 56)) clamped to the levels.
    """

    def __init__(self, featmap_names: list[str], strides: list[int], output_size: int, sampling_ratio: int):
        super().__init__(featmap_names, output_size, sampling_ratio)
        if len(strides) != len(featmap_names):
            raise ValueError(f"need one stride per feature map, got {strides} for {featmap_names}")
        self.strides = list(strides)
        # RoIs of side finest_scale·2^k go to level k: 56 px for a stride-4 P2, as in both libraries.
        self.finest_scale = 224 * self.strides[0] / 16

    def level_of(self, boxes: Tensor) -> Tensor:
        """FPN level index (0 = finest) of each xyxy box."""
        side = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).clamp(min=0).sqrt()
        level = torch.floor(torch.log2(side / self.finest_scale + 1e-6))
        return level.clamp(0, len(self.strides) - 1).to(torch.int64)

    def forward(self, x: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]) -> Tensor:
        features = [x[name] for name in self.featmap_names]
        all_boxes = torch.cat(boxes)
        image_index = torch.cat([torch.full((len(b), 1), i, dtype=all_boxes.dtype, device=all_boxes.device)
                                 for i, b in enumerate(boxes)])
        rois = torch.cat([image_index, all_boxes], dim=1)
        levels = self.level_of(all_boxes)
        pooled = features[0].new_zeros((len(rois), features[0].shape[1], *self.output_size))
        for level, (feature, stride) in enumerate(zip(features, self.strides)):
            index = torch.where(levels == level)[0]
            level_pooled = roi_align(feature, rois[index], self.output_size, spatial_scale=1.0 / stride,
                                     sampling_ratio=self.sampling_ratio, aligned=True)
            pooled[index] = level_pooled.to(pooled.dtype)
        return pooled


class LastLevelP6FromC5(ExtraFPNBlock):
    """P6 = 3×3 stride-2 conv on C5 (Adaptive RetinaNet, reference §7); torchvision's block also adds P7.

    Initialised Xavier-uniform, bias 0, as the reference's FPN convs (reference §7.1), not with
    torchvision's Kaiming-uniform (a = 1), which for C5's 2048 channels in and 256 out is narrower.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.p6 = torch.nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1)
        torch.nn.init.xavier_uniform_(self.p6.weight)
        torch.nn.init.zeros_(self.p6.bias)

    def forward(self, p: list[Tensor], c: list[Tensor], names: list[str]) -> tuple[list[Tensor], list[str]]:
        return [*p, self.p6(c[-1])], [*names, "p6"]


class BatchNormalisedRetinaNetHead(RetinaNetHead):
    """RetinaNet head whose focal and box losses are divided once by the positive anchors of the
    whole per-process batch (reference §7.1; mmdetection sums max(1, positives) over the images).

    torchvision divides each image's loss by that image's own positives and then averages: a tile
    holding one matched anchor then weighs as much as one holding fifty, and its summed focal loss
    over every negative anchor, divided by 1, can dominate a step and make training from random
    weights spike.
    """

    def compute_loss(self, targets: list[dict[str, Tensor]], head_outputs: dict[str, Tensor],
                     anchors: list[Tensor], matched_idxs: list[Tensor]) -> dict[str, Tensor]:
        classification, regression, positives = [], [], 0
        per_image = zip(targets, head_outputs["cls_logits"], head_outputs["bbox_regression"], anchors, matched_idxs)
        for target, logits, deltas, image_anchors, matched in per_image:
            foreground = matched >= 0
            positives += max(1, int(foreground.sum()))
            labels = torch.zeros_like(logits)
            labels[foreground, target["labels"][matched[foreground]]] = 1.0
            valid = matched != self.classification_head.BETWEEN_THRESHOLDS  # anchors between the IoU thresholds
            classification.append(sigmoid_focal_loss(logits[valid], labels[valid], reduction="sum"))
            regression.append(_box_loss(self.regression_head._loss_type, self.regression_head.box_coder,
                                        image_anchors[foreground], target["boxes"][matched[foreground]],
                                        deltas[foreground]))
        return {"classification": torch.stack(classification).sum() / positives,
                "bbox_regression": torch.stack(regression).sum() / positives}
