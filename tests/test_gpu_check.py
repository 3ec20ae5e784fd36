"""Issue 11: benchmarks/gpu_check.sh, the prepared device check, runs end to end in its CPU smoke mode
(so it cannot rot between the rare sessions with a GPU), records every step with real values, and its
JSON becomes the RESULTS.md section.

The experiment step runs notebooks/experiment.ipynb with a params row and `overrides`; until the
notebook declares those parameters the step must fail with that reason, and once it does, pass.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tinysm.paths import repo_root

ROOT = repo_root()
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_check  # noqa: E402
from gpu_results_to_markdown import to_markdown  # noqa: E402

DETECTORS = ["faster_fpn", "adaptive_retinanet"]


@pytest.fixture(scope="module")
def smoke_check(tmp_path_factory):
    """`bash benchmarks/gpu_check.sh OUT --smoke` with this interpreter; (OUT, process, seconds)."""
    out = tmp_path_factory.mktemp("gpu_check")
    env = {**os.environ, "PYTHON": sys.executable, "GPU_CHECK_WORK": str(tmp_path_factory.mktemp("gpu_check_work"))}
    start = time.monotonic()
    process = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(out), "--smoke"],
                             env=env, capture_output=True, text=True, timeout=600)
    return out, process, time.monotonic() - start


@pytest.mark.slow
def test_smoke_check_records_every_step_with_real_values(smoke_check):
    out, process, seconds = smoke_check
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    check = json.loads((out / "gpu_check.json").read_text())
    assert check["schema"] == gpu_check.SCHEMA and check["mode"] == "smoke"
    steps = check["steps"]
    assert list(steps) == list(gpu_check.STEPS)
    for name, record in steps.items():
        assert record["status"] in ("ok", "skipped", "failed"), (name, record)  # never timeout or missing
        assert record["seconds"] >= 0 and record["exit_code"] in (0, 1), (name, record)
    assert check["wall_s"] < check["budget_s"] and seconds < check["budget_s"] + 30
    assert (out / "gpu_check.log").read_text().count("=== ") == len(gpu_check.STEPS)

    env = steps["env"]
    assert env["status"] == "ok"
    import torch
    assert env["result"]["torch"] == torch.__version__ and env["result"]["cpu_count"] == os.cpu_count()
    assert env["result"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert "papermill" not in env["result"]["missing_modules"]

    data = steps["data"]
    assert data["status"] == "ok", data
    images = {f["name"]: f["images"] for f in data["result"]["files"]}
    assert images == {"tiny_set train (raw)": 2, "tiny_set train tiles (all, erase)": 2, "tiny_set test (all)": 1,
                      "coco train2017": 4, "coco val2017": 1}
    root = Path(data["result"]["root"])
    assert (root / "tiny_set").is_dir() and (root / "coco").is_dir() and out not in root.parents

    for kind in ("train", "infer"):  # infer_saturated below
        fp32, amp = steps[f"{kind}_fp32"], steps[f"{kind}_amp"]
        assert fp32["status"] == "ok", fp32
        assert amp["status"] == "skipped" and "CUDA" in amp["reason"]  # the smoke run is on the CPU
        result = fp32["result"]
        assert result["device_type"] == "cpu" and result["backbone"] == "resnet18" and result["amp"] is False
        assert [row["detector"] for row in result["rows"]] == DETECTORS
        for row in result["rows"]:
            assert row["images_per_s"] > 0 and row["peak_rss_mib"] > 0
            assert row["peak_gpu_memory_mib"] is None  # no GPU memory on a CPU
    for row in steps["train_fp32"]["result"]["rows"]:
        assert row["step_s"] > 0 and 0 <= row["data_wait"] < 1 and row["steps"] == 2
    assert steps["infer_fp32"]["result"]["tiles_per_image"] == 1
    for row in steps["infer_fp32"]["result"]["rows"]:  # no candidate passes the score threshold
        assert 0 <= row["merge_share"] < 1 and row["detections_per_image"] == 0
    saturated = steps["infer_saturated"]
    assert saturated["status"] == "ok" and saturated["result"]["scores"] == "saturated"
    for row in saturated["result"]["rows"]:  # every candidate passes: the merge's worst case
        assert row["images_per_s"] > 0 and 0 < row["merge_share"] < 1 and row["detections_per_image"] > 0


@pytest.mark.slow
def test_smoke_check_runs_a_params_synth_row_through_the_notebook(smoke_check):
    out, _, _ = smoke_check
    experiment = json.loads((out / "gpu_check.json").read_text())["steps"]["experiment"]
    assert experiment["status"] == "ok", experiment
    result = experiment["result"]
    for stage in ("pretrain", "finetune"):
        summary = result["stages"][stage]
        assert summary["finished"] and summary["iterations"] == 1 and summary["wall_s"] > 0
        assert summary["images_per_s"] > 0 and summary["full_schedule_estimate_s"] > 0
    assert result["stages"]["pretrain"]["scale_match"] == "sm"  # exp4.0: pre-training with Scale Match
    assert result["test_images"] == 1 and result["evaluation_s"] > 0
    assert result["AP50_tiny"] == -1 or 0 <= result["AP50_tiny"] <= 100
    assert result["notebook_s"] > 0 and result["cells"]


@pytest.mark.slow
def test_markdown_section_has_the_device_and_the_tables(smoke_check, tmp_path):
    out, _, _ = smoke_check
    script = ROOT / "benchmarks" / "gpu_results_to_markdown.py"
    section = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True,
                             check=True).stdout
    assert section.startswith("## GPU check (issue 11)") and "CPU smoke run" in section
    assert "| `train_amp` | skipped |" in section
    assert "| detector | precision | images/s | step | data wait | peak GPU memory |" in section
    assert "| detector | precision, scores | frames | images/s | tiles/s | merge share |" in section
    for name in ("Faster-FPN", "Adaptive RetinaNet"):
        assert f"| {name} | fp32 |" in section  # training
        assert f"| {name} | fp32, none pass | 1 |" in section and f"| {name} | fp32, all at 0.5 | 1 |" in section
    assert "### Experiment `params/synth/exp4.0.yaml`" in section and "| finetune | 1 |" in section
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n")
    subprocess.run([sys.executable, str(script), str(out), "--append", str(results)], check=True,
                   capture_output=True)
    assert results.read_text() == "# Benchmark results\n\n" + section


def test_a_step_that_dies_or_times_out_is_recorded_and_the_section_lists_it(tmp_path):
    """The bookkeeping alone (no torch): what `finish` and `collect` write when a step left no record."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "data.log").write_text("Traceback ...\nMemoryError\n")
    gpu_check.finish(tmp_path, "data", exit_code=137, seconds=12.3, limit=10)
    gpu_check.finish(tmp_path, "env", exit_code=1, seconds=0.4, limit=60)
    gpu_check.record_step(tmp_path, "train_fp32", lambda: 1 / 0)
    gpu_check.skip_for_budget(tmp_path, "experiment", 3)
    check = gpu_check.collect(tmp_path, "2026-01-01T00:00:00+00:00", smoke=False, budget=450)
    steps = check["steps"]
    assert steps["data"]["status"] == "timeout" and "10 s" in steps["data"]["error"]
    assert steps["env"]["status"] == "failed" and steps["env"]["exit_code"] == 1
    assert steps["train_fp32"]["status"] == "failed" and "ZeroDivisionError" in steps["train_fp32"]["error"]
    assert steps["experiment"]["status"] == "skipped" and "budget" in steps["experiment"]["reason"]
    assert steps["infer_amp"] == {"status": "missing"}
    assert check["failed"] == ["env", "data", "train_fp32", "train_amp", "infer_fp32", "infer_amp",
                               "infer_saturated"]
    section = to_markdown(json.loads((tmp_path / "gpu_check.json").read_text()))
    assert "the env step did not run" in section and "| `data` | timeout | 12 s |" in section
    assert "### Training" not in section  # no table without figures
