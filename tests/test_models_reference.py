"""Where torchvision and the reference (TOV_mmdetection, mmdet 2.13; reference §7.1) differ, the built
detectors follow the reference: one test per difference, each with answers worked out by hand."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import fastrcnn_loss
from torchvision.ops import FrozenBatchNorm2d, roi_align

from model_support import one_thread, small_detector  # noqa: F401 (one_thread: autouse fixture)

DETECTORS = ["faster_fpn", "adaptive_retinanet"]


def test_roi_align_samples_adaptively_by_default():
    pooler = small_detector("faster_fpn").roi_heads.box_roi_pool
    assert pooler.sampling_ratio == 0  # mmcv's RoIAlign(sampling_ratio=0)
    features = {str(k): torch.rand(1, 4, 64 // 2 ** k, 64 // 2 ** k) for k in range(4)}
    box = torch.tensor([[10.0, 20.0, 110.0, 70.0]])  # √area 71 -> P2 (stride 4): 25 × 12.5 cells, 7×7 bins
    rois = torch.cat([torch.zeros(1, 1), box], 1)
    pooled = pooler(features, [box], [(256, 256)])
    # 0: ceil(25 / 7) = 4 samples across × ceil(12.5 / 7) = 2 down each bin, not a fixed 2 × 2
    torch.testing.assert_close(pooled, roi_align(features["0"], rois, 7, 0.25, 0, aligned=True))
    assert not torch.allclose(pooled, roi_align(features["0"], rois, 7, 0.25, 2, aligned=True))


def test_faster_box_loss_is_l1_in_both_stages_with_torchvisions_normalisation():
    """One positive whose deltas are (0.1, -0.2, 0.05, 0.3) against zero targets: L1 0.65 in all.
    Smooth-L1 (β = 1/9) would give 0.045 + 0.1444 + 0.01125 + 0.2444 = 0.4451 instead."""
    model = small_detector("faster_fpn")
    deltas = torch.tensor([[0.1, -0.2, 0.05, 0.3]])
    # RPN: one positive, two negatives, one ignored anchor -> 3 sampled anchors in the batch
    labels = [torch.tensor([1.0, 0.0, 0.0, -1.0])]
    targets = [torch.zeros(4, 4)]
    pred = torch.cat([deltas, torch.full((3, 4), 7.0)])  # a non-positive's deltas never count
    _, rpn_box = model.rpn.compute_loss(torch.zeros(4, 1), pred, labels, targets)
    assert float(rpn_box) == pytest.approx(0.65 / 3)
    # RoI head: proposal 0 is class 1 (its class-1 deltas count, not its class-0 ones), proposal 1 background
    regression = torch.cat([torch.cat([torch.full((1, 4), 5.0), deltas], 1), torch.full((1, 8), 9.0)])
    losses = model.roi_heads.losses(torch.zeros(2, 2), regression, [torch.tensor([1, 0])], [torch.zeros(2, 4)])
    assert float(losses["loss_box_reg"]) == pytest.approx(0.65 / 2)
    assert float(losses["loss_classifier"]) == pytest.approx(math.log(2))
    # the documented alternative is torchvision's own loss, scaled the same way
    smooth = small_detector("faster_fpn", box_loss="smooth_l1")
    _, rpn_smooth = smooth.rpn.compute_loss(torch.zeros(4, 1), pred, labels, targets)
    assert float(rpn_smooth) == pytest.approx(0.44514 / 3, abs=1e-5)
    smooth_losses = smooth.roi_heads.losses(torch.zeros(2, 2), regression, [torch.tensor([1, 0])], [torch.zeros(2, 4)])
    expected = fastrcnn_loss(torch.zeros(2, 2), regression, [torch.tensor([1, 0])], [torch.zeros(2, 4)])
    assert float(smooth_losses["loss_box_reg"]) == pytest.approx(float(expected[1]))
    assert float(smooth_losses["loss_box_reg"]) == pytest.approx(0.44514 / 2, abs=1e-5)


def anchor_generator_of(model):
    return model.rpn.anchor_generator if hasattr(model, "rpn") else model.anchor_generator


@pytest.mark.parametrize("name,level_sizes", [
    ("faster_fpn", [(8,), (16,), (32,), (64,), (128,)]),
    ("adaptive_retinanet", [tuple(stride * 2 * 2 ** (i / 3) for i in range(3)) for stride in (4, 8, 16, 32, 64)]),
])
def test_cell_anchors_keep_their_float_shapes(name, level_sizes):
    generator = anchor_generator_of(small_detector(name))
    for cells, sizes in zip(generator.cell_anchors, level_sizes, strict=True):
        # ratio r = h / w: w = s / √r, h = s·√r, centred on (0, 0); ratios vary slowest
        expected = [[-w / 2, -h / 2, w / 2, h / 2] for r in (0.5, 1.0, 2.0) for s in sizes
                    for w, h in [(s / math.sqrt(r), s * math.sqrt(r))]]
        torch.testing.assert_close(cells, torch.tensor(expected), rtol=0, atol=1e-5)
    smallest = generator.cell_anchors[0][0]  # size 8, ratio 0.5 in both: the reference's 11.31 × 5.66
    assert smallest.tolist() == pytest.approx([-5.6569, -2.8284, 5.6569, 2.8284], abs=1e-4)
    rounded = anchor_generator_of(small_detector(name, round_anchors=True))  # torchvision's, kept as an option
    assert rounded.cell_anchors[0][0].tolist() == [-6, -3, 6, 3]


@pytest.mark.parametrize("name", DETECTORS)
def test_anchors_sit_on_cell_corners_and_stay_float32_under_bf16_autocast(name):
    generator = anchor_generator_of(small_detector(name))
    images = ImageList(torch.zeros(1, 3, 64, 128), [(64, 128)])
    features = [torch.zeros(1, 8, 64 // stride, 128 // stride) for stride in (4, 8, 16, 32, 64)]
    anchors = generator(images, features)[0]
    per_cell = len(generator.cell_anchors[0])
    cell = (2 * 32 + 5) * per_cell  # level 0 (stride 4), row 2, column 5: centre (20, 8), no half-stride offset
    centres = (anchors[cell: cell + per_cell, :2] + anchors[cell: cell + per_cell, 2:]) / 2
    torch.testing.assert_close(centres, torch.tensor([[20.0, 8.0]]).expand(per_cell, 2))
    half_precision = generator(images, [f.bfloat16() for f in features])[0]
    assert half_precision.dtype == torch.float32
    torch.testing.assert_close(half_precision, anchors, rtol=0, atol=0)


def std(weight: torch.Tensor) -> float:
    return float(weight.detach().std())


def assert_xavier_uniform(layer: nn.Module, name: str) -> None:
    """|w| ≤ √(6 / (fan_in + fan_out)) and the largest |w| within 3 % of it (≥ 2048 draws); bias 0."""
    weight = layer.weight.detach()
    receptive = weight[0, 0].numel()  # kernel area; 1 for a linear layer
    bound = math.sqrt(6 / (weight.shape[1] * receptive + weight.shape[0] * receptive))
    assert weight.numel() >= 2048, name
    assert float(weight.abs().max()) <= bound, name
    assert float(weight.abs().max()) >= 0.97 * bound, name
    assert std(weight) == pytest.approx(bound / math.sqrt(3), rel=0.05), name
    assert not layer.bias.any(), name


@pytest.mark.parametrize("name", DETECTORS)
def test_fpn_convs_start_xavier_uniform(name):
    model = small_detector(name)
    convs = {key: m for key, m in model.backbone.fpn.named_modules() if isinstance(m, nn.Conv2d)}
    # 4 laterals (1×1: resnet18's 64..512 channels in, 32 out), 4 outputs (3×3, 32 -> 32), RetinaNet's P6 on C5
    assert len(convs) == (9 if name == "adaptive_retinanet" else 8)
    for key, conv in convs.items():
        assert_xavier_uniform(conv, key)


def test_faster_box_head_starts_as_the_reference():
    model = small_detector("faster_fpn")
    assert_xavier_uniform(model.roi_heads.box_head.fc6, "fc6")  # 32·7·7 = 1568 in, 1024 out
    assert_xavier_uniform(model.roi_heads.box_head.fc7, "fc7")
    scores, deltas = model.roi_heads.box_predictor.cls_score, model.roi_heads.box_predictor.bbox_pred
    assert std(scores.weight) == pytest.approx(0.01, rel=0.1)  # 2 × 1024 draws
    assert std(deltas.weight) == pytest.approx(0.001, rel=0.1)  # 8 × 1024 draws
    assert abs(float(scores.weight.detach().mean())) < 0.001 and abs(float(deltas.weight.detach().mean())) < 0.0001
    assert not scores.bias.any() and not deltas.bias.any()
    # what TOV_mmdetection's code actually does (mmdet 2.13's init_cfg bug): all four Xavier-normal
    tov = small_detector("faster_fpn", box_head_init="xavier_normal").roi_heads
    for layer in (tov.box_head.fc6, tov.box_head.fc7, tov.box_predictor.cls_score, tov.box_predictor.bbox_pred):
        fan_out, fan_in = layer.weight.shape
        assert std(layer.weight) == pytest.approx(math.sqrt(2 / (fan_in + fan_out)), rel=0.1)
        assert not layer.bias.any()


def test_retinanet_head_starts_as_the_reference():
    head = small_detector("adaptive_retinanet", num_classes=2).head
    logits = head.classification_head.cls_logits  # 9 anchors × 2 classes × 32 × 3 × 3 draws
    torch.testing.assert_close(logits.bias, torch.full_like(logits.bias, -math.log(0.99 / 0.01)))
    convs = [m for m in head.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 2 * 4 + 2
    for conv in convs:
        assert std(conv.weight) == pytest.approx(0.01, rel=0.1)
        assert conv is logits or not conv.bias.any()


# IoU of 6 GTs (rows) with 5 anchors (columns). Anchor 0 is the best of GT 0 and of GT 1; anchor 1
# is positive (0.9) for GT 2 and the best of GT 3; GT 4's best is a tie between anchors 2 and 3;
# GT 5's best is 0.25, under the RPN's 0.3 floor.
CLAIMS = torch.tensor([[0.50, 0.00, 0.00, 0.00, 0.10],
                       [0.40, 0.00, 0.00, 0.00, 0.00],
                       [0.00, 0.90, 0.00, 0.00, 0.00],
                       [0.00, 0.80, 0.00, 0.00, 0.20],
                       [0.00, 0.00, 0.45, 0.45, 0.00],
                       [0.00, 0.00, 0.00, 0.00, 0.25]])


@pytest.mark.parametrize("name,expected", [
    # RPN (0.7 / 0.3, floor 0.3): the thresholds give [ignored, GT 2, ignored, ignored, negative];
    # then GT 0, 1, 2, 3, 4 claim their best anchors in that order, GT 5 is under the floor.
    # torchvision would give claimed anchors their own best GT: [0, 2, 4, 4, -1].
    ("faster_fpn", [1, 3, 4, 4, -1]),
    # RetinaNet (0.5 / 0.4, floor 0): GT 5 claims anchor 4 too. torchvision: [0, 2, 4, 4, 5].
    ("adaptive_retinanet", [1, 3, 4, 4, 5]),
])
def test_low_quality_matches_go_to_the_last_gt_claiming_the_anchor(name, expected):
    model = small_detector(name)
    matcher = model.rpn.proposal_matcher if name == "faster_fpn" else model.proposal_matcher
    assert matcher(CLAIMS.clone()).tolist() == expected


@pytest.mark.parametrize("name", DETECTORS)
def test_pretraining_batchnorm_trains_its_affine_weights_but_never_its_statistics(name):
    model = small_detector(name, bn_affine_trainable=True).train()
    body = model.backbone.body
    norms = {key: m for key, m in body.named_modules() if isinstance(m, FrozenBatchNorm2d)}
    assert len(norms) == 1 + 2 * 8 + 3 and not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    for key, norm in norms.items():
        trainable = key.startswith(("layer2", "layer3", "layer4"))  # stem and layer1 stay frozen (frozen_stages=1)
        assert isinstance(norm.weight, nn.Parameter) and isinstance(norm.bias, nn.Parameter), key
        assert norm.weight.requires_grad == norm.bias.requires_grad == trainable, key
        assert {"running_mean", "running_var"} <= dict(norm.named_buffers()).keys()
    before = {key: value.clone() for key, value in body.state_dict().items()}
    image = torch.rand(3, 64, 64)
    target = {"boxes": torch.tensor([[10.0, 12.0, 30.0, 40.0]]), "labels": torch.tensor([1])}
    optimiser = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    sum(model([image], [target]).values()).backward()
    optimiser.step()
    after = body.state_dict()
    assert not torch.equal(after["layer2.0.bn1.weight"], before["layer2.0.bn1.weight"])
    assert not torch.equal(after["layer4.1.bn2.bias"], before["layer4.1.bn2.bias"])
    assert torch.equal(after["bn1.weight"], before["bn1.weight"]) and torch.equal(after["layer1.0.bn1.bias"],
                                                                                   before["layer1.0.bn1.bias"])
    for key in before:
        if "running_" in key:
            assert torch.equal(after[key], before[key]), key
    # the trained weights transfer by name into a plain fine-tuning model, and back
    plain = small_detector(name, seed=1)
    plain.load_state_dict(model.state_dict())
    assert not isinstance(plain.backbone.body.layer2[0].bn1.weight, nn.Parameter)
    torch.testing.assert_close(plain.backbone.body.layer2[0].bn1.weight, model.backbone.body.layer2[0].bn1.weight)
    with torch.no_grad():
        torch.testing.assert_close(plain.eval().backbone(image[None]), model.eval().backbone(image[None]))
    small_detector(name, bn_affine_trainable=True).load_state_dict(plain.state_dict())
    with pytest.raises(ValueError, match="bn_affine_trainable contradicts trainable_backbone"):
        small_detector(name, bn_affine_trainable=True, trainable_backbone=True)


@pytest.mark.parametrize("name", DETECTORS)
def test_every_level_places_its_anchors_at_its_own_stride(name):
    model = small_detector(name)
    generator = anchor_generator_of(model)
    image = torch.rand(1, 3, 96, 160)  # odd multiples of 32: P6 is 2 × 3 cells, 64 px apart in mmdetection
    features = list(model.backbone(image).values())
    anchors = generator(ImageList(image, [(96, 160)]), features)[0]
    per_cell, start = len(generator.cell_anchors[0]), 0
    for feature, stride in zip(features, (4, 8, 16, 32, 64), strict=True):
        height, width = feature.shape[-2:]
        level = anchors[start: start + height * width * per_cell]
        start += len(level)
        centres = ((level[:, :2] + level[:, 2:]) / 2)[::per_cell]
        rows, columns = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
        expected = torch.stack([columns.flatten(), rows.flatten()], 1).float() * stride
        torch.testing.assert_close(centres, expected, rtol=0, atol=1e-4)  # torchvision's P6: 53 and 48 apart
    assert start == len(anchors)
