"""Faster-FPN's box-regression loss as a setting: L1, the reference's, or torchvision's smooth-L1.

reference §7.1: the reference (mmdetection's `L1Loss`, weight 1) regresses boxes with plain L1 in the RPN
and in the RoI head; torchvision hard-codes smooth-L1 with β = 1/9 in both. The two subclasses below
change only the per-element loss. The normalisation stays torchvision's, which is also the
reference's: the RPN's summed box loss over the anchors sampled in the whole batch (positives and
negatives), the RoI head's over the proposals sampled in the whole batch.
"""
from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork

BoxLoss = Literal["l1", "smooth_l1"]
SMOOTH_L1_BETA = 1 / 9  # torchvision's fixed transition point, in both stages


def checked_box_loss(kind: str) -> BoxLoss:
    """`kind` if it names a box loss, else a ValueError (at build time, not in the first step)."""
    if kind not in get_args(BoxLoss):
        raise ValueError(f"box_loss must be one of {get_args(BoxLoss)}, got {kind!r}")
    return kind  # type: ignore[return-value]


def summed_box_loss(kind: BoxLoss, deltas: Tensor, targets: Tensor) -> Tensor:
    """Σ of the per-coordinate box loss between predicted and target deltas (no normalisation)."""
    if checked_box_loss(kind) == "l1":
        return F.l1_loss(deltas, targets, reduction="sum")
    return F.smooth_l1_loss(deltas, targets, beta=SMOOTH_L1_BETA, reduction="sum")


class BoxLossRegionProposalNetwork(RegionProposalNetwork):
    """RPN whose box loss is `box_loss` (reference §7.1: L1) instead of smooth-L1; all else torchvision's."""

    def __init__(self, *args, box_loss: BoxLoss = "l1", **kwargs):
        super().__init__(*args, **kwargs)
        self.box_loss = checked_box_loss(box_loss)

    def compute_loss(self, objectness: Tensor, pred_bbox_deltas: Tensor, labels: list[Tensor],
                     regression_targets: list[Tensor]) -> tuple[Tensor, Tensor]:
        """(objectness BCE, box loss) over the anchors the balanced sampler draws from the batch."""
        positive_masks, negative_masks = self.fg_bg_sampler(labels)
        positive = torch.cat(positive_masks).nonzero().squeeze(1)
        sampled = torch.cat([positive, torch.cat(negative_masks).nonzero().squeeze(1)])
        targets = torch.cat(regression_targets)
        box = summed_box_loss(self.box_loss, pred_bbox_deltas[positive], targets[positive]) / sampled.numel()
        objectness_loss = F.binary_cross_entropy_with_logits(objectness.flatten()[sampled], torch.cat(labels)[sampled])
        return objectness_loss, box


class BoxLossRoIHeads(RoIHeads):
    """Box-only RoI heads whose box loss is `box_loss` (reference §7.1: L1) instead of smooth-L1.

    torchvision computes that loss in a module-level function called from `forward`, so the
    training branch is rewritten here (box head only: this project has no mask or keypoint head);
    inference is torchvision's own.
    """

    def __init__(self, *args, box_loss: BoxLoss = "l1", **kwargs):
        super().__init__(*args, **kwargs)
        self.box_loss = checked_box_loss(box_loss)

    def forward(self, features: dict[str, Tensor], proposals: list[Tensor], image_shapes: list[tuple[int, int]],
                targets: list[dict[str, Tensor]] | None = None):
        if not self.training:
            return super().forward(features, proposals, image_shapes, targets)
        if self.has_mask() or self.has_keypoint():
            raise NotImplementedError("BoxLossRoIHeads trains the box head only")
        proposals, _, labels, regression_targets = self.select_training_samples(proposals, targets)
        box_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = self.box_predictor(box_features)
        return [], self.losses(class_logits, box_regression, labels, regression_targets)

    def losses(self, class_logits: Tensor, box_regression: Tensor, labels: list[Tensor],
               regression_targets: list[Tensor]) -> dict[str, Tensor]:
        """Cross-entropy over the sampled proposals; the box loss of the positives' own-class deltas,
        summed and divided by the number of sampled proposals (torchvision's names and scaling)."""
        classes = torch.cat(labels)
        targets = torch.cat(regression_targets)
        positive = (classes > 0).nonzero().squeeze(1)
        deltas = box_regression.reshape(len(classes), -1, 4)[positive, classes[positive]]
        box = summed_box_loss(self.box_loss, deltas, targets[positive]) / classes.numel()
        return {"loss_classifier": F.cross_entropy(class_logits, classes), "loss_box_reg": box}
