"""What tinysm reproduce shows while an experiment runs: stage, iteration / total, loss, time left."""
from __future__ import annotations

import json
import os
import time

import yaml

from tinysm.experiments.progress import RunWatcher, stage_progress


def write_stage(stage_dir, records, epochs=10, max_iters=None, started=None):
    stage_dir.mkdir(parents=True)
    (stage_dir / "config.yaml").write_text(yaml.safe_dump({"epochs": epochs, "max_iters": max_iters}))
    if started is not None:
        os.utime(stage_dir / "config.yaml", (started, started))
    lines = [json.dumps(r) for r in records] + ['{"iteration": 30, "lo']  # a line being written
    (stage_dir / "metrics.jsonl").write_text("\n".join(lines))


def test_progress_line_by_hand(tmp_path):
    now = time.time()
    write_stage(tmp_path / "finetune", [{"iteration": 10, "epoch": 1.0, "loss": 0.9},
                                        {"iteration": 20, "epoch": 2.0, "eval": {}},
                                        {"iteration": 20, "epoch": 2.0, "loss": 0.5}], started=now - 40)
    # 10 iterations per epoch x 10 epochs = 100; 20 done in 40 s -> 80 more take 160 s.
    assert stage_progress(tmp_path / "finetune", now) == "finetune 20/100, loss 0.500, ~160 s left"
    write_stage(tmp_path / "pretrain", [{"iteration": 5, "epoch": 0.5, "loss": 2.0}], max_iters=8, started=now - 5)
    assert stage_progress(tmp_path / "pretrain", now) == "pretrain 5/8, loss 2.000, ~3 s left"
    assert stage_progress(tmp_path / "missing", now) is None


def test_watcher_echoes_each_new_line_once(tmp_path):
    write_stage(tmp_path / "finetune", [{"iteration": 10, "epoch": 1.0, "loss": 0.9}], started=time.time() - 10)
    lines: list[str] = []
    watcher = RunWatcher(tmp_path, lines.append, interval=0.01)
    watcher.start()
    time.sleep(0.2)
    watcher.stop()
    assert len(lines) >= 1 and lines[0].startswith("    finetune 10/100, loss 0.900")
    assert len(set(line.split(",")[0] for line in lines)) == 1  # the same progress is not repeated
