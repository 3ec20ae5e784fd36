"""Detectors of reference §7 on torchvision, and weight transfer between class sets (reference §8).

Contract with the training engine and the tiled inference (tinysm/engine/predict.py):

- `build_detector(name, num_classes, backbone="resnet50", backbone_weights=None, category_ids=None,
  trainable_backbone=False, bn_affine_trainable=False, **overrides) -> nn.Module`, name "faster_fpn" or
  "adaptive_retinanet". `backbone_weights`: "imagenet", a local ResNet state_dict file, or None;
  stem, layer1 and all BatchNorm are frozen unless `trainable_backbone` (the rule when no
  pre-trained tensor will ever be loaded); `bn_affine_trainable` (COCO pre-training stages) lets
  the BatchNorm weight and bias of layer2..4 train while the statistics stay frozen; the state_dict
  names do not change.
- Input images: a list of float32 3×H×W tensors in [0, 1]. The model normalises with ImageNet
  mean/std and pads to a multiple of 32 itself; it never resizes.
- Train mode: `model(images, targets)` -> dict of named losses; targets are dicts with `boxes`
  (xyxy float, N×4) and `labels` (COCO category ids from `category_ids`, default 1..num_classes).
- Eval mode: `model(images)` -> one dict per image: `boxes` (xyxy float32), `scores` (float32),
  `labels` (COCO category ids). Boxes are decoded in float32 under any autocast.
- `model.merge_variant`: "two_stage" or "one_stage", the reference §2.3 merge that applies, and
  `model.tile_detections(images)`: what that merge takes per tile (two-stage: the NMS'd detections;
  one-stage: the raw candidates, top `topk_candidates` per level above `score_thresh`, no NMS).
- `model.category_ids`: the COCO id of each class, in class order.
- `load_matching_weights(model, checkpoint) -> TransferReport`: every tensor whose name and shape
  match; `checkpoint` is a path or a state_dict, bare or under "model" (the engine's format).
"""
from tinysm.models.build import DETECTORS, build_detector
from tinysm.models.faster_fpn import FasterFPN, FasterFPNSettings
from tinysm.models.retinanet import AdaptiveRetinaNet, AdaptiveRetinaNetSettings
from tinysm.models.transfer import TransferReport, load_matching_weights

__all__ = [
    "DETECTORS", "build_detector", "FasterFPN", "FasterFPNSettings", "AdaptiveRetinaNet",
    "AdaptiveRetinaNetSettings", "TransferReport", "load_matching_weights",
]
