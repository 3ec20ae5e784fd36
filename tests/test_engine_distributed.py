"""The same entry point under torchrun: 2 CPU processes (gloo) against 1 process on the same
global batch (issue 5 item 6). With torchvision's per-image loss normalisation, Adaptive
RetinaNet's loss is a mean over images, so the processes' mean loss equals the 1-process loss, and
DDP's averaged gradients give the same step. That needs frozen BatchNorm, so the backbone comes
from a weights file: a from-scratch model normalises with each process's own batch statistics, and
the reference's per-process-batch loss normaliser (reference §7.1) is by design not split-invariant.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import yaml
from torchvision.models import get_model

from engine_support import one_torch_thread, toy_config, write_toy_dataset  # noqa: F401 (autouse fixture)
from tinysm.config import config_to_dict
from tinysm.engine.metrics_log import read_metrics
from tinysm.engine.train import train


def test_two_process_torchrun_matches_one_process_on_the_same_global_batch(tmp_path):
    data = tmp_path / "data"
    write_toy_dataset(data, images=4, size=(64, 64))
    weights = tmp_path / "resnet18.pth"
    torch.manual_seed(0)
    torch.save(get_model("resnet18", weights=None).state_dict(), weights)
    common = dict(epochs=1, milestones=[1], warmup_iters=0, max_iters=2, backbone_weights=str(weights),
                  detector_options={"fpn_channels": 32, "loss_normalisation": "image"})
    single = toy_config(data, tmp_path / "one", batch_size=2, **common)
    train(single)

    pair = toy_config(data, tmp_path / "two", batch_size=1, **common)  # 2 processes × 1 image
    config_file = tmp_path / "two.yaml"
    config_file.write_text(yaml.safe_dump(config_to_dict(pair)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "tinysm", "train", str(config_file)],
        capture_output=True, text=True, env=env, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("final checkpoint:") == 1  # rank 0 alone reports

    one, two = read_metrics(single.paths.metrics), read_metrics(pair.paths.metrics)
    assert [r["iteration"] for r in two] == [1, 2]
    assert two[0]["lr"] == one[0]["lr"] == pytest.approx(0.005 * 2)  # LR per global batch of 2
    # First step: the same images and weights. Second step: DDP's averaged gradients took the
    # same SGD step as the 1-process batch.
    for step in range(2):
        assert two[step]["loss"] == pytest.approx(one[step]["loss"], rel=1e-4)
    assert one[1]["loss"] != pytest.approx(one[0]["loss"], rel=1e-4)  # the step changed the model
