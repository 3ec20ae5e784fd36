"""What `tinysm reproduce` shows while an experiment notebook runs: the stage, iteration / total,
the loss and the time left, read from the run folder the engine writes anyway (each stage's
`config.yaml` and `metrics.jsonl`), so the notebook's own output stays short.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from tinysm.experiments.stages import STAGES


def last_training_record(metrics: Path) -> dict[str, Any] | None:
    """The newest complete training record of a metrics log (None before the first one)."""
    if not metrics.is_file():
        return None
    for line in reversed(metrics.read_text().splitlines()):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # the line being written
            continue
        if "loss" in record:
            return record
    return None


def stage_progress(stage_dir: Path, now: float) -> str | None:
    """"finetune 120/165, loss 0.412, ~36 s left" for a stage that has logged, else None."""
    record = last_training_record(stage_dir / "metrics.jsonl")
    config_path = stage_dir / "config.yaml"
    if record is None or not config_path.is_file() or record["epoch"] <= 0:
        return None
    config = yaml.safe_load(config_path.read_text())
    done = record["iteration"]
    total = round(config["epochs"] * done / record["epoch"])
    if config.get("max_iters"):
        total = min(total, config["max_iters"])
    elapsed = now - config_path.stat().st_mtime
    left = elapsed / done * (total - done) if done else float("nan")
    return f"{stage_dir.name} {done}/{total}, loss {record['loss']:.3f}, ~{left:.0f} s left"


class RunWatcher(threading.Thread):
    """Echoes a run folder's progress every `interval` seconds while a notebook fills it, and when a
    stage's progress line changes; `stop()` ends it."""

    def __init__(self, run_dir: Path, echo: Callable[[str], None], interval: float = 30.0, prefix: str = "    "):
        super().__init__(daemon=True)
        self.run_dir, self.echo, self.interval, self.prefix = run_dir, echo, interval, prefix
        self._stopped = threading.Event()

    def run(self) -> None:
        shown: dict[str, str] = {}
        while not self._stopped.wait(self.interval):
            for stage in STAGES:
                line = stage_progress(self.run_dir / stage, time.time())
                if line is not None and shown.get(stage) != line:
                    self.echo(f"{self.prefix}{line}")
                    sys.stdout.flush()  # seen now even when the output is a pipe or a log file
                    shown[stage] = line

    def stop(self) -> None:
        self._stopped.set()
        self.join()
