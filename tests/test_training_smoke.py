"""Issue 5, done when: on the synthetic data, a small CPU run (resnet18) of each detector brings the
training loss clearly down and beats the same model before training on AP50_tiny (reference §6.4).

Scaled to a CPU shared by several jobs: 16 synthetic training frames and 6 test frames of 192×160
(one tile each), narrow FPN and heads, random initialisation (no download), 120 (Faster-FPN) and
160 (Adaptive RetinaNet-c) iterations of batch 2. The evaluation is the engine's own: tiled
inference + evaluate_tiny after the last step, logged to metrics.jsonl.

From random weights the engine trains BatchNorm and every stage (`TrainConfig.trainable_backbone`); with
reference §7's frozen ImageNet conventions the network had no normalisation at all and the RetinaNet
run diverged or not depending on the CPU's rounding. Focal-loss training still has one short
transient when the classifier first separates persons from background (a few iterations of high
loss, at an iteration that can move with rounding), so the loss is compared by medians, which one
transient cannot move, and the margins are several times smaller than what a learning model
reaches here (loss ratio about 0.6, AP50_tiny 10 to 20 from 0). A model that does not learn (the
learning rate divided by 1000) fails both checks.
"""
from __future__ import annotations

import statistics

import pytest
import torch

from engine_support import one_torch_thread  # noqa: F401 (autouse fixture)
from tinysm.data.layout import TinyPersonLayout
from tinysm.data.synth import TinyPersonSceneConfig, generate
from tinysm.engine.config import train_config_from_mapping
from tinysm.engine.distributed import setup_distributed
from tinysm.engine.evaluate import evaluate_on
from tinysm.engine.metrics_log import read_metrics
from tinysm.engine.train import build_model, seed_everything, train

RUNS = {
    # Faster-FPN from random weights with the reference's L1 box loss and initialisation: clipped at
    # max-norm 10, or the RoI classifier can diverge at this rate.
    "faster_fpn": dict(max_iters=120, lr_per_image=0.01, clip_grad_norm=10.0, detector_options={
        "fpn_channels": 64, "representation_size": 256, "box_batch_size_per_image": 128}),
    # Adaptive RetinaNet-c: clipped at max-norm 1 (reference §7); a 50-iteration warm-up.
    "adaptive_retinanet": dict(max_iters=160, lr_per_image=0.02, clip_grad_norm=1.0, warmup_iters=50,
                               detector_options={"fpn_channels": 64}),
}


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> TinyPersonLayout:
    root = tmp_path_factory.mktemp("synthetic")
    scenes = TinyPersonSceneConfig(frame_sizes=((192, 160),), persons=(6, 12), size_median=12.0)
    return generate(root, train=16, test=6, coco_train=0, coco_val=0, workers=1, tiny_config=scenes).tiny_set


@pytest.fixture
def deterministic():
    """torch's deterministic kernels, so the run is the same on every call on one machine."""
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(False)


@pytest.mark.slow
@pytest.mark.parametrize("detector", sorted(RUNS))
def test_short_cpu_run_lowers_the_loss_and_beats_the_untrained_model(detector, tiny_set, tmp_path, deterministic):
    config = train_config_from_mapping({
        "detector": detector, "backbone": "resnet18", "device": "cpu", "workers": 0, "seed": 0,
        "train_annotations": str(tiny_set.train_tile_annotations), "train_images": str(tiny_set.erase_train_images),
        "eval_annotations": str(tiny_set.mini_test_annotations), "eval_images": str(tiny_set.test_images),
        "out_dir": str(tmp_path / "run"), "batch_size": 2, "epochs": 100, "milestones": [90],
        "warmup_iters": 10, "log_every": 1, **RUNS[detector]}, f"smoke {detector}")
    # The weak baseline: the very model `train` starts from (same seed, same construction).
    seed_everything(config.seed)
    untrained = build_model(config, [1], setup_distributed("cpu"))
    before = evaluate_on(untrained, tiny_set.mini_test_annotations, tiny_set.test_images, progress=False)

    train(config)
    records = read_metrics(config.paths.metrics)
    losses = [r["loss"] for r in records if "loss" in r]
    after = [r["eval"] for r in records if "eval" in r]
    assert len(losses) == config.max_iters and len(after) == 1
    assert statistics.median(losses[-20:]) < 0.8 * statistics.median(losses[:5])
    assert after[0]["AP50_tiny"] > before["AP50_tiny"] + 2.0
