"""TrainConfig validation, `tinysm train` arguments, and the LR per global batch (reference §8)."""
from __future__ import annotations

import pytest
import torch

from tinysm.cli import main
from tinysm.commands import parse_overrides
from tinysm.config import ConfigError
from tinysm.engine.config import load_train_config, train_config_from_mapping
from tinysm.engine.distributed import DistributedContext
from tinysm.engine.train import build_training_state, should_evaluate

CPU = DistributedContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
REQUIRED = "detector: faster_fpn\ntrain_annotations: a.json\ntrain_images: img\nout_dir: runs/x\n"


def write(tmp_path, text):
    path = tmp_path / "stage.yaml"
    path.write_text(REQUIRED + text)
    return path


def test_defaults_are_the_fine_tuning_recipe(tmp_path):
    config = load_train_config(write(tmp_path, ""))
    assert (config.lr_per_image, config.momentum, config.weight_decay) == (0.005, 0.9, 1e-4)
    assert (config.epochs, config.milestones, config.warmup_iters, config.warmup_ratio) == (12, (8, 11), 500, 0.001)
    assert config.clip_grad_norm is None and config.scale_match == "none"
    assert config.amp is False and config.bn_affine_trainable is False  # fp32, frozen BatchNorm (reference §7.1)


@pytest.mark.parametrize("text, message", [
    ("epoch: 3\n", r"unknown key\(s\) \['epoch'\]"),
    ("batch_size: two\n", r"'batch_size' must be an integer"),
    ("milestones: [11, 8]\n", r"'milestones' must be increasing epochs in 1..epochs=12"),
    ("milestones: [13]\n", r"'milestones' must be increasing"),
    ("scale_match: sm\n", r"'sm_target_annotations' is required with scale_match='sm'"),
    ("eval_every: 1\n", r"'eval_annotations' is required with eval_every"),
    ("clip_grad_norm: 0\n", r"'clip_grad_norm' must be positive or null, got 0"),
    ("bn_affine_trainable: true\n", r"'bn_affine_trainable' needs pre-trained weights"),
    ("scale_match: fancy\n", r"'scale_match' must be one of \['none', 'sm', 'msm', 'gaussian'\]"),
    ("detector: yolo\n", r"not valid YAML: .*key 'detector' appears twice"),  # REQUIRED names it
])
def test_bad_values_name_the_file_and_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_train_config(path)
    assert str(caught.value).startswith(str(path))


def test_overrides_are_read_as_yaml(tmp_path):
    assert parse_overrides(["max_iters=100", "backbone_weights=null", "milestones=[1, 2]"]) == {
        "max_iters": 100, "backbone_weights": None, "milestones": [1, 2]}
    config = load_train_config(write(tmp_path, ""), parse_overrides(["clip_grad_norm=1.0", "epochs=2",
                                                                     "milestones=[1]"]))
    assert (config.clip_grad_norm, config.epochs, config.milestones) == (1.0, 2, (1,))
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_overrides(["max_iters"])


def test_cli_reports_a_bad_config_in_one_line(tmp_path, capsys):
    path = write(tmp_path, "lr: 0.01\n")
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(path) in err and "'lr'" in err


def test_learning_rate_is_per_image_of_the_global_batch():
    # reference §8: 0.005 per image; 2 GPUs × 1 image -> 0.01.
    model = torch.nn.Linear(2, 2)
    two_gpus = DistributedContext(rank=0, world_size=2, local_rank=0, device=torch.device("cpu"))
    config = train_config_from_mapping({"detector": "faster_fpn", "train_annotations": "a.json",
                                        "train_images": "img", "out_dir": "runs/x", "batch_size": 1})
    state = build_training_state(model, config, two_gpus, iters_per_epoch=10)
    assert state.optimizer.param_groups[0]["initial_lr"] == pytest.approx(0.01)
    assert state.optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 0.001)  # warm-up starts at 0.001×
    assert state.optimizer.param_groups[0]["momentum"] == 0.9



@pytest.mark.parametrize("eval_every, stop_at, expected", [
    (2, 15, [6, 12, 15]),   # every 2 epochs of 3 iterations, and after the last step
    (None, 15, [15]),       # only after the last step
    (2, 7, [6, 7]),         # a run cut short by max_iters is evaluated where it stops
])
def test_evaluation_points(eval_every, stop_at, expected):
    config = train_config_from_mapping({"detector": "faster_fpn", "train_annotations": "a.json",
                                        "train_images": "img", "out_dir": "runs/x", "epochs": 5,
                                        "milestones": [4], "eval_annotations": "t.json",
                                        "eval_images": "timg", "eval_every": eval_every})
    state = build_training_state(torch.nn.Linear(2, 2), config, CPU, iters_per_epoch=3)
    points = []
    for iteration in range(1, stop_at + 1):
        state.iteration = iteration
        if should_evaluate(config, state, stop_at):
            points.append(iteration)
    assert points == expected


def test_detector_must_be_a_registered_one():
    with pytest.raises(ConfigError, match=r"stage: 'detector' must be one of \['faster_fpn', 'adaptive_retinanet'\]"):
        train_config_from_mapping({"detector": "yolo", "train_annotations": "a.json", "train_images": "i",
                                   "out_dir": "o"}, "stage")


def pretrained_resnet18(tmp_path):
    """A resnet18 state_dict file standing in for pre-trained backbone weights."""
    from torchvision.models import get_model

    weights = tmp_path / "resnet18.pth"
    torch.save(get_model("resnet18", weights=None).state_dict(), weights)
    return weights


def backbone_and_optimised(tmp_path, weights, setting: str):
    """The ResNet body built from `weights` with one more config line, and the ids of the tensors the
    optimiser updates."""
    from tinysm.engine.train import build_model

    config = load_train_config(write(tmp_path, f"backbone: resnet18\nbackbone_weights: {weights}\n{setting}\n"
                                               "detector_options: {fpn_channels: 32}\n"))
    model = build_model(config, [1], CPU)
    optimised = {id(p) for group in build_training_state(model, config, CPU, 10).optimizer.param_groups
                 for p in group["params"]}
    return model.backbone.body, optimised


def test_pretraining_trains_batchnorm_affine_weights_of_a_pretrained_backbone(tmp_path):
    """reference §7.1: on COCO the BatchNorm weight and bias of layer2..4 train, statistics frozen."""
    weights = pretrained_resnet18(tmp_path)
    trained = {}
    for affine in (False, True):
        body, optimised = backbone_and_optimised(tmp_path, weights, f"bn_affine_trainable: {str(affine).lower()}")
        trained[affine] = [id(body.layer2[0].bn1.weight) in optimised, id(body.layer4[1].bn2.bias) in optimised,
                           id(body.bn1.weight) in optimised]
    assert trained == {False: [False, False, False], True: [True, True, False]}  # the stem stays frozen


def test_backbone_freezing_none_trains_every_stage_of_a_pretrained_backbone(tmp_path):
    """The ablation of README "The CPU study": after pre-training, the stem, layer1 and BatchNorm train too."""
    from torchvision.ops import FrozenBatchNorm2d

    weights = pretrained_resnet18(tmp_path)
    built = {}
    for freezing in ("reference", "none"):
        body, optimised = backbone_and_optimised(tmp_path, weights, f"backbone_freezing: {freezing}")
        built[freezing] = [type(body.bn1), id(body.conv1.weight) in optimised,
                           id(body.layer1[0].bn1.weight) in optimised]
    assert built == {"reference": [FrozenBatchNorm2d, False, False], "none": [torch.nn.BatchNorm2d, True, True]}
    with pytest.raises(ConfigError, match="'bn_affine_trainable' needs pre-trained weights .* backbone_freezing"):
        load_train_config(write(tmp_path, f"backbone_weights: {weights}\nbackbone_freezing: none\n"
                                          "bn_affine_trainable: true\n"))
