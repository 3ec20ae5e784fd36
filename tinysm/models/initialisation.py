"""Initial values of the layers a detector adds to its backbone, as the reference sets them (reference §7.1).

torchvision initialises its FPN convs with Kaiming-uniform (a = 1) and its box head and predictor
with PyTorch's `nn.Linear` default; the reference (mmdetection 2.13's init_cfg) uses:
- FPN: Xavier-uniform for every conv, the lateral 1×1s, the 3×3 outputs and RetinaNet's P6 conv
  on C5, biases 0 (for a square 3×3 conv, fan-in = fan-out, this is the same distribution as
  torchvision's; the 1×1 laterals and the P6 conv differ);
- Faster-FPN's RoI box head and predictor: see `BoxHeadInit`.
The RPN head (N(0, 0.01), biases 0) and the RetinaNet head (N(0, 0.01), classification bias at the
focal prior 0.01) already start as the reference's in torchvision.
"""
from __future__ import annotations

from typing import Literal, get_args

from torch import nn
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead

# "normal_predictors" (reference §7.1, mmdetection's intent): the two shared FCs Xavier-uniform, the class
# scores N(0, 0.01), the box deltas N(0, 0.001). "xavier_normal": all four Xavier-normal, which is
# what TOV_mmdetection's own code (mmdet 2.13 + mmcv 1.3) actually does: its ConvFCBBoxHead
# init_cfg applies Xavier (mmcv's default distribution, normal) to every nn.Linear of the head after
# the predictors' normal init (mmdetection issue #6238, fixed in 2.18/2.19). Biases 0 in both.
BoxHeadInit = Literal["normal_predictors", "xavier_normal"]


def xavier_uniform_layers_(module: nn.Module) -> None:
    """Every conv and linear layer inside `module`: Xavier-uniform weight (gain 1), zero bias."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def init_faster_box_layers_(box_head: TwoMLPHead, predictor: FastRCNNPredictor, scheme: BoxHeadInit) -> None:
    """Faster-FPN's two shared FCs and its class/box predictors, after `scheme`."""
    if scheme not in get_args(BoxHeadInit):
        raise ValueError(f"box_head_init must be one of {get_args(BoxHeadInit)}, got {scheme!r}")
    layers = [box_head.fc6, box_head.fc7, predictor.cls_score, predictor.bbox_pred]
    if scheme == "xavier_normal":
        for layer in layers:
            nn.init.xavier_normal_(layer.weight)
    else:
        xavier_uniform_layers_(box_head)
        nn.init.normal_(predictor.cls_score.weight, std=0.01)
        nn.init.normal_(predictor.bbox_pred.weight, std=0.001)
    for layer in layers:
        nn.init.zeros_(layer.bias)
