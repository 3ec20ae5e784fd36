"""Checkpoint files, RNG capture and the metrics log: the pieces an exact resume rests on."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from tinysm.engine.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from tinysm.engine.metrics_log import MetricsLog, read_metrics


def draws():
    return random.random(), float(np.random.rand()), float(np.random.randn()), torch.rand(2).tolist()


def test_rng_streams_continue_after_a_weights_only_round_trip(tmp_path):
    np.random.randn()  # leaves a cached Gaussian in numpy's state: it must travel too
    save_checkpoint({"model": {}, "rng": [capture_rng_state()]}, tmp_path / "c.pt")
    expected = draws()
    restore_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"][0])
    assert draws() == expected


def test_save_replaces_atomically_and_bad_files_are_named(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint({"model": {"w": torch.ones(2)}}, path)
    save_checkpoint({"model": {"w": torch.zeros(2)}}, path)
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.zeros(2))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left behind

    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"c\.pt: cannot read this checkpoint"):
        load_checkpoint(path)
    torch.save({"weights": torch.ones(1)}, path)
    with pytest.raises(ValueError, match=r"c\.pt: a checkpoint must be a dict with a 'model' state_dict"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="missing.pt: checkpoint does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_metrics_log_resumes_at_the_checkpoint_and_skips_a_torn_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path)
    for iteration in (1, 2, 3, 4):
        log.write({"iteration": iteration, "loss": 1.0 / iteration})
    with path.open("a") as stream:
        stream.write('{"iteration": 5, "lo')  # a crash in the middle of a write
    assert [r["iteration"] for r in read_metrics(path)] == [1, 2, 3, 4]

    resumed = MetricsLog(path, start_iteration=2)  # the last checkpoint was at iteration 2
    resumed.write({"iteration": 3, "loss": 0.5})
    assert read_metrics(path) == [{"iteration": 1, "loss": 1.0}, {"iteration": 2, "loss": 0.5},
                                  {"iteration": 3, "loss": 0.5}]
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_a_failed_checkpoint_write_is_an_os_error_naming_the_file_and_keeps_the_previous_one(tmp_path, monkeypatch):
    """torch's zip writer says "file write failed" with a RuntimeError on a full disk."""
    from tinysm.engine import checkpoint as checkpoint_module

    path = tmp_path / "checkpoint_last.pt"
    checkpoint_module.save_checkpoint({"model": {}, "iteration": 1}, path)

    def full_disk(obj, target):
        Path(target).write_bytes(b"PK partial")
        raise RuntimeError("[enforce fail at inline_container.cc:783] . PytorchStreamWriter failed writing file data/0: file write failed")
    monkeypatch.setattr(checkpoint_module.torch, "save", full_disk)
    with pytest.raises(OSError, match=r"checkpoint_last\.pt: the checkpoint could not be written \(.*file write failed\); is the disk full\?"):
        checkpoint_module.save_checkpoint({"model": {}, "iteration": 2}, path)
    monkeypatch.undo()
    assert checkpoint_module.load_checkpoint(path)["iteration"] == 1  # the previous one, intact
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint_last.pt"]  # no temporary file left
