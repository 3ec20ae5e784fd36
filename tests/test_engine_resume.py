"""Exact resume and non-finite loss handling of the training engine (reference §8 recipe, issue 5 item 3)."""
from __future__ import annotations

import pytest
import torch

import tinysm.engine.train as engine_train
from engine_support import one_torch_thread, toy_config, write_toy_dataset  # noqa: F401 (autouse fixture)
from tinysm.engine.checkpoint import load_checkpoint
from tinysm.engine.metrics_log import read_metrics
from tinysm.engine.train import NonFiniteLossError, train

# Narrow FPN and small heads: the same code paths at a fraction of the cost.
SMALL = {"detector_options": {"fpn_channels": 32}}
SMALL_FASTER = {"detector_options": {"fpn_channels": 32, "representation_size": 64,
                                     "box_batch_size_per_image": 64}}


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    write_toy_dataset(root, images=4)
    return root


def losses_by_iteration(config):
    return {r["iteration"]: r["loss"] for r in read_metrics(config.paths.metrics) if "loss" in r}


def test_resume_mid_epoch_continues_exactly(toy_data, tmp_path):
    # Faster-FPN samples anchors and RoIs from torch's global stream: an exact resume needs the
    # RNG states, the sampler position and the optimiser/scheduler state all restored.
    common = dict(detector="faster_fpn", epochs=2, batch_size=1, **SMALL_FASTER)  # 4 iterations per epoch
    uninterrupted = toy_config(toy_data, tmp_path / "full", **common)
    train(uninterrupted)

    interrupted = toy_config(toy_data, tmp_path / "cut", max_iters=3, **common)
    train(interrupted)
    assert load_checkpoint(interrupted.paths.last_checkpoint)["iteration"] == 3
    # What a crash after iteration 3 leaves behind: the last checkpoint and the log, no final model.
    interrupted.paths.final_checkpoint.unlink()
    interrupted.paths.finished.unlink()
    resumed = toy_config(toy_data, tmp_path / "cut", **common)
    train(resumed)

    full, again = losses_by_iteration(uninterrupted), losses_by_iteration(resumed)
    assert sorted(again) == list(range(1, 9))  # no record lost or repeated by the resume
    assert again == full  # exact equality, iterations 4..8 included
    assert len(set(full.values())) > 1
    final_full = torch.load(uninterrupted.paths.final_checkpoint, weights_only=True)["model"]
    final_resumed = torch.load(resumed.paths.final_checkpoint, weights_only=True)["model"]
    assert all(torch.equal(final_full[name], final_resumed[name]) for name in final_full)


def test_finished_stage_is_not_trained_again(toy_data, tmp_path):
    config = toy_config(toy_data, tmp_path / "run", max_iters=1, **SMALL)
    final = train(config)
    written = final.stat().st_mtime_ns
    assert train(config) == final and final.stat().st_mtime_ns == written


def test_out_dir_of_another_config_is_refused(toy_data, tmp_path):
    train(toy_config(toy_data, tmp_path / "run", max_iters=1, **SMALL))
    with pytest.raises(FileExistsError, match=r"differs in \['lr_per_image'\]"):
        train(toy_config(toy_data, tmp_path / "run", max_iters=1, lr_per_image=0.01, **SMALL))


class LossTurnsNaN(torch.nn.Module):
    """Wraps a detector; from call `after` + 1 on, its classification loss is NaN."""

    def __init__(self, detector: torch.nn.Module, after: int):
        super().__init__()
        self.detector, self.after, self.calls = detector, after, 0

    def forward(self, images, targets=None):
        losses = self.detector(images, targets)
        self.calls += 1
        if self.calls > self.after:
            losses["classification"] = losses["classification"] * float("nan")
        return losses


def test_non_finite_loss_stops_naming_the_iteration_and_keeps_the_checkpoint(toy_data, tmp_path, monkeypatch):
    build = engine_train.build_model
    monkeypatch.setattr(engine_train, "build_model", lambda *args: LossTurnsNaN(build(*args), after=3))
    # 2 iterations per epoch; checkpoints after iterations 2 (epoch end) and 3 (checkpoint_every).
    config = toy_config(toy_data, tmp_path / "run", checkpoint_every=3, **SMALL)
    with pytest.raises(NonFiniteLossError, match=r"iteration 4 \(epoch 2\).*last good checkpoint is kept"):
        train(config)
    checkpoint = load_checkpoint(config.paths.last_checkpoint)
    assert checkpoint["iteration"] == 3
    assert not config.paths.final_checkpoint.exists()
    assert max(losses_by_iteration(config)) == 3  # the NaN step was neither applied nor logged
