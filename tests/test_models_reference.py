"""Where torchvision and the reference (TOV_mmdetection, mmdet 2.13; SPEC §7.1) differ, the built
detectors follow the reference: one test per difference, each with answers worked out by hand."""
from __future__ import annotations

import math

import pytest
import torch
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import fastrcnn_loss
from torchvision.ops import roi_align

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
    smallest = generator.cell_anchors[0][0]  # size 8, ratio 0.5 in both: SPEC's 11.31 × 5.66
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
