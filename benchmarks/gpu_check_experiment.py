"""The experiment step of `benchmarks/gpu_check.sh`: one params row, shortened, through papermill.

The notebook runs as a user would run it (`papermill notebooks/experiment.ipynb ... -p params ROW
-y "overrides: {...}"`), in its own kernel, so the figures include kernel start, data loading and the
notebook's own figures. The stage times are read back from what the run folder records anyway:
- a stage's wall time: from its `config.yaml` (written when the stage starts) to its
  `model_final.pt` (written when it ends), so it includes building the loader and the model;
- its step time: summed over the `metrics.jsonl` training records, each of which covers the
  iterations since the previous record at `images_per_s` (images = iterations × global batch, the
  last batch of an epoch counted full);
- the evaluation: `evaluation_seconds` of `metrics.json`, with AP50_tiny;
- every code cell's duration from the executed notebook (papermill records it).
A full-schedule estimate per stage (seconds per iteration × epochs × iterations per epoch) says
what the unshortened row would cost on this device.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "experiment.ipynb"


class StepError(RuntimeError):
    """A failed step that still has figures worth keeping (`partial`)."""

    def __init__(self, message: str, partial: dict[str, Any]):
        super().__init__(message)
        self.partial = partial


def json_lines(path: Path) -> list[dict[str, Any]]:
    """The complete records of a JSON-lines log (a line cut short is skipped)."""
    records = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def stage_summary(stage_dir: Path, gpus: int) -> dict[str, Any] | None:
    """Iterations, wall and step seconds, images/s, data wait and the full-schedule estimate of a stage."""
    import yaml

    config_path, final = stage_dir / "config.yaml", stage_dir / "model_final.pt"
    if not config_path.is_file():
        return None
    config = yaml.safe_load(config_path.read_text())
    records = [r for r in json_lines(stage_dir / "metrics.jsonl") if "loss" in r]
    batch = config["batch_size"] * gpus
    seconds = waiting = 0.0
    previous = 0
    for record in records:
        window = (record["iteration"] - previous) * batch / record["images_per_s"]
        seconds, waiting, previous = seconds + window, waiting + window * record["data_wait"], record["iteration"]
    summary: dict[str, Any] = {
        "finished": final.is_file(), "batch_size": config["batch_size"], "global_batch": batch,
        "amp": bool(config.get("amp")) and config.get("device") != "cpu",  # the engine ignores it on a CPU
        "backbone": config.get("backbone"), "scale_match": config.get("scale_match"),
        "wall_s": final.stat().st_mtime - config_path.stat().st_mtime if final.is_file() else None,
        "iterations": previous}
    if records and seconds > 0:
        last = records[-1]
        full = round(config["epochs"] * last["iteration"] / last["epoch"])
        summary.update(step_s=seconds, s_per_iter=seconds / previous, images_per_s=previous * batch / seconds,
                       data_wait=waiting / seconds, last_loss=last["loss"], full_schedule_iters=full,
                       full_schedule_estimate_s=seconds / previous * full)
    return summary


def cell_durations(executed: Path) -> list[dict[str, Any]]:
    """Each executed code cell's first line and seconds, as papermill recorded them."""
    if not executed.is_file():
        return []
    cells = json.loads(executed.read_text()).get("cells", [])
    timed = []
    for index, cell in enumerate(cells):
        duration = cell.get("metadata", {}).get("papermill", {}).get("duration")
        if cell.get("cell_type") == "code" and duration is not None:
            source = "".join(cell.get("source", "")).strip().splitlines()
            timed.append({"cell": index, "source": (source[0] if source else "")[:80], "seconds": duration})
    return timed


def run_summary(run_dir: Path, executed: Path) -> dict[str, Any]:
    """What the run folder and the executed notebook record, whatever point the run reached."""
    import yaml

    config_path = run_dir / "config.yaml"
    config = yaml.safe_load(config_path.read_text()) if config_path.is_file() else {}
    gpus = {"pretrain": int(config.get("pretrain_gpus", 1)), "finetune": int(config.get("gpus", 1))}
    summary: dict[str, Any] = {
        "run_dir": str(run_dir), "config": config,
        "stages": {stage: stage_summary(run_dir / stage, gpus[stage]) for stage in ("pretrain", "finetune")},
        "cells": cell_durations(executed)}
    metrics_path = run_dir / "metrics.json"
    if metrics_path.is_file():
        record = json.loads(metrics_path.read_text())
        summary.update(evaluation_s=record.get("evaluation_seconds"), test_images=record.get("test_images"),
                       AP50_tiny=record["metrics"].get("AP50_tiny"), metrics=record["metrics"])
    return summary


def experiment_result(out: Path, params: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Run the params row `params` (relative to the repository) with `overrides` through papermill;
    raise `StepError` (with what was recorded so far) when the notebook fails."""
    import yaml

    run_dir = Path(overrides["runs_dir"]) / Path(params).stem  # a row is named after its file
    executed = out / "exp.ipynb"
    command = [sys.executable, "-m", "papermill", str(NOTEBOOK), str(executed), "-k", "python3", "--log-output",
               "-p", "params", params, "-y", yaml.safe_dump({"overrides": overrides}, default_flow_style=True)]
    print("$", " ".join(command), flush=True)
    start = time.monotonic()
    code = subprocess.run(command, cwd=REPO).returncode
    result = {"params": params, "overrides": overrides, "notebook_s": time.monotonic() - start,
              **run_summary(run_dir, executed)}
    if code != 0:
        raise StepError(f"papermill exited with code {code}; the executed notebook is {executed}", result)
    return result
