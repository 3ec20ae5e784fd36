"""Detectors of reference §7: settings, torchvision's traps (each with a test), labels, backbone weights."""
from __future__ import annotations

import math
import urllib.error
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models import get_model
from torchvision.models.detection._utils import BoxCoder, Matcher
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import FrozenBatchNorm2d, roi_align

import tinysm.models.backbone as backbone_module
from tinysm.config import ConfigError
from tinysm.models import AdaptiveRetinaNetSettings, build_detector
from tinysm.models.components import (
    AlignedMultiScaleRoIAlign, Float32BoxCoder, LowQualityFloorMatcher, NativeScaleTransform,
)

from model_support import one_thread, small_detector  # noqa: F401 (one_thread: autouse fixture)

DETECTORS = ["faster_fpn", "adaptive_retinanet"]


def test_transform_normalises_and_pads_but_never_resizes():
    image = torch.rand(3, 100, 130)
    transform = NativeScaleTransform().eval()
    batch, _ = transform([image])
    assert batch.image_sizes == [(100, 130)]
    assert batch.tensors.shape == (1, 3, 128, 160)  # padded to multiples of 32
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    torch.testing.assert_close(batch.tensors[0, :, :100, :130], (image - mean) / std)
    assert batch.tensors[0, :, 100:, 130:].abs().max() == 0
    # The trap: torchvision's own transform blows the tile up to min_size even in eval mode.
    resized, _ = GeneralizedRCNNTransform(800, 1333, [0.0] * 3, [1.0] * 3).eval()([image])
    assert resized.image_sizes[0][0] == 800


@pytest.mark.parametrize("name", DETECTORS)
@pytest.mark.parametrize("training", [True, False])
def test_backbone_sees_the_tile_at_native_scale(name, training):
    model = small_detector(name).train(training)
    seen = []
    model.backbone.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    target = {"boxes": torch.tensor([[10.0, 10.0, 20.0, 24.0]]), "labels": torch.tensor([1])}
    model([torch.rand(3, 96, 128)], [target] if training else None)
    assert seen == [(1, 3, 96, 128)]


@pytest.mark.parametrize("name", DETECTORS)
def test_stem_layer1_and_every_batchnorm_frozen_without_weights(name):
    # torchvision switches to trainable BatchNorm when weights_backbone=None; reference §7 freezes it
    # whenever pre-trained tensors will be loaded, which is the default.
    model = small_detector(name)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert any(isinstance(m, FrozenBatchNorm2d) for m in model.backbone.body.modules())
    for parameter_name, parameter in model.backbone.body.named_parameters():
        assert parameter.requires_grad == parameter_name.startswith(("layer2", "layer3", "layer4")), parameter_name
    assert all(p.requires_grad for p in model.backbone.fpn.parameters())


@pytest.mark.parametrize("name", DETECTORS)
def test_trainable_backbone_trains_batchnorm_and_every_stage(name):
    model = small_detector(name, trainable_backbone=True)
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())
    norms = [m for m in model.backbone.body.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 1 + 2 * 8 + 3  # stem, 2 in each of resnet18's 8 blocks, 3 downsamples
    assert all(p.requires_grad for p in model.parameters())
    model.train()
    model.backbone.body.bn1(torch.full((2, 64, 4, 4), 3.0))  # batch statistics move the running mean
    assert float(model.backbone.body.bn1.running_mean[0]) == pytest.approx(0.3)


def test_retinanet_losses_are_divided_by_the_positives_of_the_whole_batch():
    """Two images of 4 anchors (one class), every logit 0 (p = 0.5) and every anchor equal to its GT,
    so by hand: focal loss 0.25·0.5²·ln2 per positive, 0.75·0.5²·ln2 per negative, L1 = Σ|deltas|."""
    model = small_detector("adaptive_retinanet")
    boxes = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50], [60, 60, 70, 70]])
    targets = [{"boxes": boxes[:1], "labels": torch.tensor([0])}, {"boxes": boxes[:2], "labels": torch.tensor([0, 0])}]
    # image 0: anchor 0 positive, 1-2 negative, 3 between the thresholds; image 1: three positives, one negative
    matched = [torch.tensor([0, -1, -1, -2]), torch.tensor([0, 1, 0, -1])]
    outputs = {"cls_logits": torch.zeros(2, 4, 1), "bbox_regression": torch.full((2, 4, 4), 0.1)}
    anchors = [boxes, torch.stack([boxes[0], boxes[1], boxes[0], boxes[3]])]
    losses = model.head.compute_loss(targets, outputs, anchors, matched)
    positive, negative = 0.25 * 0.25 * math.log(2), 0.75 * 0.25 * math.log(2)
    assert float(losses["classification"]) == pytest.approx((4 * positive + 3 * negative) / (1 + 3))
    assert float(losses["bbox_regression"]) == pytest.approx(4 * 0.4 / (1 + 3))
    # torchvision's per-image normalisation, the documented alternative, gives another number
    per_image = small_detector("adaptive_retinanet", loss_normalisation="image")
    torchvision_losses = per_image.head.compute_loss(targets, outputs, anchors, matched)
    expected = ((positive + 2 * negative) / 1 + (3 * positive + negative) / 3) / 2
    assert float(torchvision_losses["classification"]) == pytest.approx(expected)


def test_faster_fpn_anchors_and_levels():
    model = small_detector("faster_fpn")
    cells = model.rpn.anchor_generator.cell_anchors
    assert len(cells) == 5 and all(len(c) == 3 for c in cells)  # P2..P6, ratios 0.5/1/2
    square_sides = [float(c[1, 2] - c[1, 0]) for c in cells]  # ratio 1 is the middle anchor
    assert square_sides == [8, 16, 32, 64, 128]
    features = model.backbone(torch.rand(1, 3, 128, 128))
    assert [f.shape[-1] for f in features.values()] == [32, 16, 8, 4, 2]  # strides 4..64
    torch.testing.assert_close(features["pool"], features["3"][..., ::2, ::2])  # P6 = subsampled P5


def test_adaptive_retinanet_anchors_and_p6_from_c5():
    sizes = AdaptiveRetinaNetSettings().anchor_sizes()
    assert sizes[0] == pytest.approx((8, 8 * 2 ** (1 / 3), 8 * 2 ** (2 / 3)))
    assert sizes[-1][-1] == pytest.approx(203.19, abs=0.01)  # 64 · 2 · 2^(2/3)
    model = small_detector("adaptive_retinanet")
    assert model.anchor_generator.num_anchors_per_location() == [9] * 5
    image = torch.rand(1, 3, 128, 128)
    features = model.backbone(image)
    assert [f.shape[-1] for f in features.values()] == [32, 16, 8, 4, 2]
    c5 = model.backbone.body(image)["3"]
    torch.testing.assert_close(features["p6"], model.backbone.fpn.extra_blocks.p6(c5))


@pytest.mark.parametrize("name,expected", [
    ("faster_fpn", {"rpn._pre_nms_top_n": {"training": 2000, "testing": 1000},  # per level
                    "rpn._post_nms_top_n": {"training": 1000, "testing": 1000}, "rpn.nms_thresh": 0.7,
                    "roi_heads.score_thresh": 0.05, "roi_heads.nms_thresh": 0.5,
                    "roi_heads.detections_per_img": 1000, "roi_heads.fg_bg_sampler.batch_size_per_image": 512,
                    "roi_heads.fg_bg_sampler.positive_fraction": 0.25, "rpn.proposal_matcher.floor": 0.3,
                    "rpn.proposal_matcher.high_threshold": 0.7, "rpn.proposal_matcher.low_threshold": 0.3}),
    ("adaptive_retinanet", {"score_thresh": 0.05, "nms_thresh": 0.5, "topk_candidates": 2000,
                            "detections_per_img": 1000, "proposal_matcher.high_threshold": 0.5,
                            "proposal_matcher.low_threshold": 0.4}),
])
def test_paper_settings_reach_torchvision(name, expected):
    model = small_detector(name)
    for path, value in expected.items():
        found = model
        for part in path.split("."):
            found = getattr(found, part)
        assert found == value, path


def test_faster_detection_cap_is_far_above_torchvisions_100():
    model = small_detector("faster_fpn")
    n = 600  # non-overlapping proposals, all confidently "person"
    corners = torch.stack(torch.meshgrid(torch.arange(30), torch.arange(20), indexing="ij"), -1).reshape(-1, 2) * 20.0
    proposals = torch.cat([corners, corners + 10], dim=1)
    logits = torch.tensor([[0.0, 5.0]]).repeat(n, 1)
    boxes, scores, _ = model.roi_heads.postprocess_detections(logits, torch.zeros(n, 8), [proposals], [(640, 640)])
    assert len(boxes[0]) == n
    torch.testing.assert_close(boxes[0][boxes[0][:, 0].argsort()], proposals[proposals[:, 0].argsort()])


def test_retinanet_final_nms_keeps_up_to_1000():
    model = small_detector("adaptive_retinanet")
    n = 1200
    xy = torch.arange(n, dtype=torch.float32)[:, None] * 20
    candidates = {"boxes": torch.cat([xy, xy, xy + 10, xy + 10], 1), "scores": torch.rand(n),
                  "labels": torch.ones(n, dtype=torch.int64)}
    kept = model.final_nms(candidates)
    assert len(kept["boxes"]) == 1000
    assert kept["scores"].min() == candidates["scores"].topk(1000).values.min()


def test_rpn_low_quality_matches_need_iou_of_at_least_the_floor():
    quality = torch.tensor([[0.5, 0.1, 0.0],    # GT 0: best IoU 0.5, between thresholds
                            [0.0, 0.2, 0.1]])   # GT 1: best IoU 0.2, below the 0.3 floor
    floored = LowQualityFloorMatcher(0.7, 0.3, floor=0.3)(quality.clone())
    assert floored.tolist() == [0, -1, -1]
    # torchvision matches GT 1 to anchor 1 at IoU 0.2; so does floor 0 (the RetinaNet's), on these IoUs.
    assert Matcher(0.7, 0.3, allow_low_quality_matches=True)(quality.clone()).tolist() == [0, 1, -1]
    assert LowQualityFloorMatcher(0.7, 0.3, floor=0.0)(quality.clone()).tolist() == [0, 1, -1]


def test_roi_align_is_aligned_and_levels_follow_the_fpn_rule():
    pooler = AlignedMultiScaleRoIAlign(["0", "1", "2", "3"], [4, 8, 16, 32], output_size=7, sampling_ratio=2)
    sides = torch.tensor([20.0, 111.0, 112.0, 223.0, 224.0, 447.0, 448.0, 900.0])
    boxes = torch.stack([torch.zeros_like(sides), torch.zeros_like(sides), sides, sides], 1)
    assert pooler.level_of(boxes).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]  # floor(log2(side / 56)), clamped
    features = {str(k): torch.rand(1, 4, 64 // 2 ** k, 64 // 2 ** k) for k in range(4)}
    box = torch.tensor([[3.0, 5.0, 17.0, 21.0]])  # side 15 -> level 0, stride 4
    pooled = pooler(features, [box], [(256, 256)])
    rois = torch.cat([torch.zeros(1, 1), box], 1)
    torch.testing.assert_close(pooled, roi_align(features["0"], rois, 7, 0.25, 2, aligned=True))
    assert not torch.allclose(pooled, roi_align(features["0"], rois, 7, 0.25, 2, aligned=False))


def test_box_decoding_stays_float32_under_bf16_autocast():
    anchors = torch.tensor([[600.0, 300.0, 608.0, 308.0], [601.3, 300.7, 606.9, 311.1]])
    deltas = torch.tensor([[0.03, -0.02, 0.1, -0.05], [0.01, 0.04, -0.2, 0.05]])
    exact = BoxCoder((1.0,) * 4).decode_single(deltas, anchors)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        snapped = BoxCoder((1.0,) * 4).decode_single(deltas.bfloat16(), anchors)
        ours = Float32BoxCoder((1.0,) * 4).decode_single(deltas.bfloat16(), anchors)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, exact, atol=0.05, rtol=0)  # only the bf16 deltas' rounding
    assert (snapped.float() - exact).abs().max() > 1.0  # the trap: a 4 px grid near x = 600
    assert torch.all(snapped.float()[:, 0::2] % 4 == 0)


def test_detector_outputs_float32_off_grid_boxes_under_bf16_autocast():
    model = small_detector("adaptive_retinanet", score_thresh=0.0).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        detections = model.tile_detections([torch.rand(3, 64, 320)])[0]
    far = detections["boxes"][:, 0::2]
    far = far[(far > 260) & (far < 316)]  # bf16 spacing is 2 px here; clipped borders excluded
    assert detections["boxes"].dtype == detections["scores"].dtype == torch.float32
    assert len(far) > 100 and (far % 2 != 0).float().mean() > 0.9


@pytest.mark.parametrize("name,offset", [("faster_fpn", 1), ("adaptive_retinanet", 0)])
def test_coco_ids_outside_class_indices_inside(name, offset):
    model = small_detector(name, 2, category_ids=[3, 7])
    targets = [{"boxes": torch.tensor([[1.0, 1, 9, 9], [2, 2, 8, 8]]), "labels": torch.tensor([7, 3])}]
    assert model.targets_to_classes(targets)[0]["labels"].tolist() == [1 + offset, 0 + offset]
    with pytest.raises(ValueError, match=r"\[5\] are not among the model's category ids \[3, 7\]"):
        model.targets_to_classes([{"boxes": torch.zeros(1, 4), "labels": torch.tensor([5])}])
    raw = [{"boxes": torch.zeros(2, 4), "scores": torch.ones(2), "labels": torch.tensor([1, 0]) + offset}]
    assert model.detections_to_coco(raw)[0]["labels"].tolist() == [7, 3]
    model.eval()
    with torch.no_grad():
        labels = model([torch.rand(3, 64, 64)])[0]["labels"]
    assert set(labels.tolist()) <= {3, 7}


@pytest.mark.parametrize("name", DETECTORS)
def test_a_few_steps_on_one_tile_lower_the_loss(name):
    # From scratch with frozen (identity) BatchNorm the detector still learns: reference §7 frozen BN
    # must not make the small CPU runs untrainable.
    model = small_detector(name, **({"representation_size": 128} if name == "faster_fpn" else {})).train()
    image = torch.zeros(3, 96, 96)
    boxes = torch.tensor([[10.0, 10, 16, 18], [60, 20, 66, 28], [30, 70, 36, 78], [70, 64, 76, 72]])
    for x1, y1, x2, y2 in boxes.int().tolist():
        image[:, y1:y2, x1:x2] = 1.0
    target = [{"boxes": boxes, "labels": torch.ones(4, dtype=torch.int64)}]
    optimiser = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    losses = []
    for _ in range(12):
        loss = sum(model([image], target).values())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert all(math.isfinite(x) for x in losses)
    assert sum(losses[-3:]) / 3 < 0.85 * losses[0]


def test_overrides_are_checked():
    with pytest.raises(ConfigError, match="unknown key.*anchor_size"):
        build_detector("faster_fpn", 1, backbone="resnet18", anchor_size=8)
    with pytest.raises(ConfigError, match="'detections_per_img' must be an integer"):
        build_detector("adaptive_retinanet", 1, backbone="resnet18", detections_per_img="many")
    with pytest.raises(ValueError, match="unknown detector 'yolo'"):
        build_detector("yolo", 1)
    with pytest.raises(ValueError, match="backbone must be one of"):
        build_detector("faster_fpn", 1, backbone="vgg16")
    with pytest.raises(ValueError, match="2 category_ids given for num_classes=1"):
        build_detector("faster_fpn", 1, backbone="resnet18", category_ids=[1, 2])


def test_backbone_weights_from_a_local_file(tmp_path):
    torch.manual_seed(1)
    resnet = get_model("resnet18", weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": resnet.state_dict()}, path)
    model = small_detector("faster_fpn", backbone_weights=path)
    body = model.backbone.body
    torch.testing.assert_close(body.layer3[1].conv2.weight, resnet.layer3[1].conv2.weight)
    torch.testing.assert_close(body.bn1.running_var, resnet.bn1.running_var)
    # The ablation's trainable backbone takes the same file into BatchNorm that trains.
    trainable = small_detector("faster_fpn", backbone_weights=path, trainable_backbone=True).backbone.body
    assert isinstance(trainable.bn1, nn.BatchNorm2d) and trainable.conv1.weight.requires_grad
    torch.testing.assert_close(trainable.bn1.running_mean, resnet.bn1.running_mean)
    torch.testing.assert_close(trainable.layer1[0].conv1.weight, resnet.layer1[0].conv1.weight)


def test_backbone_weights_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.pth"):
        build_detector("faster_fpn", 1, backbone="resnet18", backbone_weights=tmp_path / "nothere.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pth: cannot be read"):
        build_detector("faster_fpn", 1, backbone="resnet18", backbone_weights=garbage)
    wrong = tmp_path / "resnet34.pth"
    torch.save(get_model("resnet34", weights=None).state_dict(), wrong)
    with pytest.raises(ValueError, match="resnet34.pth: not a resnet18 state_dict"):
        build_detector("faster_fpn", 1, backbone="resnet18", backbone_weights=wrong)


@pytest.fixture
def hub_dir(tmp_path, monkeypatch) -> Path:
    """An empty torch hub cache; returns where resnet18's ImageNet file would be cached."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    return tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"


def test_imagenet_weights_offline_say_how_to_pass_a_local_file(monkeypatch, hub_dir):
    def offline(url, dst, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(ValueError, match=r"resnet18-f37072fd\.pth.*backbone_weights='/path/to/resnet18-f37072fd\.pth'"):
        build_detector("faster_fpn", 1, backbone="resnet18", backbone_weights="imagenet")


def test_imagenet_weights_come_from_torchvisions_enum(monkeypatch, hub_dir):
    reference = get_model("resnet18", weights=None).state_dict()
    requested = []

    def download(url, dst, hash_prefix=None, **kwargs):
        requested.append((url, hash_prefix))
        torch.save(reference, dst)
    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    monkeypatch.setattr(backbone_module, "sha256_of", lambda path: "f37072fd" + "0" * 56)  # a real download's hash
    model = small_detector("adaptive_retinanet", backbone_weights="imagenet")
    assert requested == [("https://download.pytorch.org/models/resnet18-f37072fd.pth", "f37072fd")]
    torch.testing.assert_close(model.backbone.body.conv1.weight, reference["conv1.weight"])


class PlantedPayload:
    """Unpickling this object creates the file `marker` (a stand-in for arbitrary code)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("hash_matches", [False, True], ids=["hash-checked", "hash-forged"])
def test_a_pickle_planted_in_the_hub_cache_never_runs(monkeypatch, hub_dir, tmp_path, hash_matches):
    marker = tmp_path / "code-ran"
    hub_dir.parent.mkdir(parents=True)
    torch.save({"conv1.weight": PlantedPayload(marker)}, hub_dir)
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("the cached file exists"))
    if hash_matches:  # even a file that passed the hash check is loaded with weights_only=True
        monkeypatch.setattr(backbone_module, "sha256_of", lambda path: "f37072fd" + "0" * 56)
    problem = "cannot be read as a PyTorch weights file" if hash_matches else "does not start with the 'f37072fd'"
    with pytest.raises(ValueError, match=f"resnet18-f37072fd.pth: .*{problem}"):
        build_detector("faster_fpn", 1, backbone="resnet18", backbone_weights="imagenet")
    assert not marker.exists()
    torch.load(hub_dir, weights_only=False)  # the payload is live: unpickled in full, it runs
    assert marker.exists()


def test_weights_that_cannot_be_had_fail_before_any_work(monkeypatch, hub_dir, tmp_path):
    """Offline, `backbone_weights: imagenet` stops the experiment in its first cell with one line
    saying what to download and where to put it; nothing is written (issue: GPU path, offline)."""
    from tinysm.experiments.config import load_experiment_config
    from tinysm.experiments.run import start_run
    from tinysm.paths import repo_root

    def offline(url, dst, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    row = repo_root() / "params" / "cpu" / "faster_fpn-none-s0.yaml"
    for weights, message in (("imagenet", r"cannot download .*resnet18-f37072fd\.pth.*put it at .*hub/checkpoints"),
                             (str(tmp_path / "missing.pth"), r"backbone weights file not found: .*missing\.pth")):
        config = load_experiment_config(row, {"backbone_weights": weights, "runs_dir": str(tmp_path / "runs")})
        with pytest.raises((ValueError, FileNotFoundError), match=message):
            start_run(config)
        assert not (tmp_path / "runs").exists()
