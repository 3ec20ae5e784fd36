"""The Python half of `benchmarks/gpu_check.sh` (issue 11): one subcommand per step, and the JSON bookkeeping.

Device time comes in short windows on fresh machines, so the check is one prepared script whose
steps are independent: each step writes `OUT/steps/<step>.json` (status "ok" with its result,
"skipped" with a reason, or "failed" with the error), the shell wraps every step in a time limit
and `finish` records a step that died or was killed without writing, and `collect` gathers the
records into `OUT/gpu_check.json`. One failing step therefore costs its own figures, never the
others'. Nothing here needs the network: the data are synthetic and every detector starts from
random weights.

    python benchmarks/gpu_check.py env|data|train|infer|experiment OUT [--smoke] [--precision fp32|amp]
                                   [--work DIR] [--params params/synth/exp4.0.yaml]
    python benchmarks/gpu_check.py finish OUT STEP --exit-code N --seconds S --limit L
    python benchmarks/gpu_check.py collect OUT --started ISO --budget S [--smoke]

`--smoke` runs the same steps on the CPU at seconds-sized settings (tests/test_gpu_check.py).
Only the standard library is imported at module level, so `finish` and `collect` start fast.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from gpu_check_experiment import REPO, StepError, experiment_result  # benchmarks/ is on sys.path

sys.path.insert(0, str(REPO))

SCHEMA = "tinysm.gpu_check/1"
# infer_fp32/amp: no score passes the threshold (detector + tiling); infer_saturated: all do (the
# merge's worst case, on the CPU), last because the budget cuts the last steps first.
STEPS = ("env", "data", "train_fp32", "train_amp", "infer_fp32", "infer_amp", "experiment", "infer_saturated")
MODULES = ("numpy", "PIL", "yaml", "orjson", "pycocotools", "tqdm", "pandas", "matplotlib", "seaborn",
           "nbformat", "papermill", "ipykernel")


class Skipped(Exception):
    """A step that does not apply on this machine (e.g. AMP without CUDA): recorded, not failed."""


@dataclass(frozen=True)
class Sizes:
    """What the steps run: the paper's sizes on a GPU (reference §2, §7, §8), seconds-sized ones on a CPU."""

    device: str
    synth: dict[str, int]                        # tinysm.data.synth.generate counts
    small_frames: bool                           # 320×256 TinyPerson / 160×120 COCO frames (smoke)
    train: list[str]                             # benchmarks/train_speed.py arguments
    infer: list[str]                             # benchmarks/infer_speed.py arguments
    saturated_images: int                        # frames timed with saturated scores (seconds each)
    overrides: dict[str, Any]                    # ExperimentConfig keys for the experiment


def sizes(smoke: bool) -> Sizes:
    """GPU: ResNet-50, 640×512 tiles, batch 2 (the paper's 2 GPUs × 1), 1920×1080 test frames, and
    an experiment of a few hundred iterations per stage (timing, not a result). Smoke: ResNet-18,
    64 FPN channels, tiny frames, one or two steps of everything."""
    workers = min(8, os.cpu_count() or 1)
    if smoke:
        common = ["--backbone", "resnet18", "--fpn-channels", "64", "--device", "cpu"]
        return Sizes("cpu", dict(train=2, test=1, coco_train=4, coco_val=1, workers=1), True,
                     common + ["--tile", "160", "128", "--frames", "1", "--batch-size", "2", "--warmup", "1",
                               "--steps", "2", "--workers", "1"],
                     common + ["--frame", "320", "256", "--images", "1"], 1,
                     dict(device="cpu", backbone="resnet18", fpn_channels=64, workers=0, log_every=1,
                          batch_size=1, pretrain_batch_size=1, max_iters=1, pretrain_max_iters=1,
                          max_train_images=2, pretrain_max_images=2, max_test_images=1, amp=False))
    common = ["--backbone", "resnet50", "--fpn-channels", "256", "--device", "cuda"]
    synth = dict(train=100, test=100, coco_train=400, coco_val=50, workers=min(16, os.cpu_count() or 1))
    return Sizes("cuda", synth, False,
                 common + ["--batch-size", "2", "--frames", "32", "--warmup", "10", "--steps", "50",
                           "--workers", str(workers)],
                 common + ["--images", "20", "--batch-size", "8"], 1,
                 dict(device="cuda", workers=workers, max_iters=200, pretrain_max_iters=200, max_test_images=20))


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def step_path(out: Path, step: str) -> Path:
    return out / "steps" / f"{step}.json"


def write_json(path: Path, value: Any) -> None:
    """Through a temporary file, so a step killed while writing leaves no half record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    tmp.replace(path)


def record_step(out: Path, step: str, body: Callable[[], dict[str, Any]]) -> int:
    """Run one step's body and write its record; the exit code is 1 when it failed."""
    try:
        record: dict[str, Any] = {"status": "ok", "result": body()}
    except Skipped as reason:
        record = {"status": "skipped", "reason": str(reason)}
    except Exception as err:  # noqa: BLE001 - a step's failure is data, the next step must still run
        traceback.print_exc()
        record = {"status": "failed", "error": f"{type(err).__name__}: {err}",
                  "traceback": traceback.format_exc()[-3000:]}
        if isinstance(err, StepError):
            record["result"] = err.partial
    write_json(step_path(out, step), record)
    return 0 if record["status"] != "failed" else 1


def require_device(size: Sizes) -> None:
    """A GPU check without a GPU would run for hours at these sizes: fail at once instead."""
    import torch

    if size.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("no CUDA device; run `gpu_check.sh OUT --smoke` on a CPU-only machine")


def environment() -> dict[str, Any]:
    """Versions, the accelerator and the host, and which of tinysm's dependencies are missing."""
    import importlib
    import platform

    import torch
    import torchvision

    cuda = torch.cuda.is_available()
    gpus = [{"name": torch.cuda.get_device_name(i),
             "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2 ** 30, 1)}
            for i in range(torch.cuda.device_count())] if cuda else []
    modules: dict[str, str | None] = {}
    for name in MODULES:
        try:
            modules[name] = str(getattr(importlib.import_module(name), "__version__", "installed"))
        except Exception:  # noqa: BLE001 - recorded as missing
            modules[name] = None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None  # a copied tree without .git
    result = {"date": now(), "python": platform.python_version(), "torch": torch.__version__,
              "torchvision": torchvision.__version__, "cuda": torch.version.cuda,
              "cudnn": torch.backends.cudnn.version() if cuda else None, "cuda_available": cuda, "gpus": gpus,
              "cpu_count": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
              "platform": platform.platform(), "load_average": list(os.getloadavg()), "git_commit": commit,
              "modules": modules, "missing_modules": [name for name, version in modules.items() if version is None]}
    print(json.dumps(result), flush=True)
    return result


def synthetic_data(work: Path, size: Sizes) -> dict[str, Any]:
    """`tinysm synth`'s generator (its Python API, which also takes frame sizes) into WORK/data."""
    from tinysm.data.synth import CocoSceneConfig, TinyPersonSceneConfig, generate

    tiny, coco = TinyPersonSceneConfig(), CocoSceneConfig()
    if size.small_frames:  # frames smaller than one tile: seconds per step on a CPU
        tiny = TinyPersonSceneConfig(frame_sizes=((320, 256),), persons=(8, 16))
        coco = CocoSceneConfig(frame_sizes=((160, 120),))
    dataset = generate(work / "data", seed=0, overwrite=True, tiny_config=tiny, coco_config=coco, **size.synth)
    print(dataset.format(), flush=True)
    return {"root": str(dataset.root), "seconds": dataset.seconds, **size.synth,
            "tiny_frame_sizes": [list(s) for s in tiny.frame_sizes],
            "coco_frame_sizes": [list(s) for s in coco.frame_sizes],
            "files": [{"name": s.name, "images": s.images, "boxes": s.boxes} for s in dataset.summaries]}


def speed(out: Path, step: str, script: str, arguments: list[str]) -> dict[str, Any]:
    """Run one of the speed benchmarks (its table goes to the log) and return its JSON, with the peak
    memory as GPU memory (null on a CPU, where the benchmark measures the process's resident set)."""
    raw = out / "raw" / f"{step}.json"
    command = [sys.executable, str(REPO / "benchmarks" / script), *arguments, "--out", str(raw)]
    print("$", " ".join(command), flush=True)
    code = subprocess.run(command, cwd=REPO).returncode
    if code != 0:
        raise RuntimeError(f"{script} exited with code {code}; see the log above")
    result = json.loads(raw.read_text())
    on_gpu = result.get("device_type") == "cuda"
    for row in result["rows"]:
        peak = row.pop("peak_memory_mib")
        row["peak_gpu_memory_mib"] = peak if on_gpu else None
        row["peak_rss_mib"] = None if on_gpu else peak
    return result


def precision_arguments(size: Sizes, precision: str) -> list[str]:
    if precision == "amp" and size.device != "cuda":
        raise Skipped("AMP (fp16 autocast + GradScaler) runs on CUDA only; the CPU run is the fp32 one")
    return ["--amp"] if precision == "amp" else []


def finish(out: Path, step: str, exit_code: int, seconds: float, limit: float) -> None:
    """Complete a step's record with its wall time; write one when the step died without recording."""
    path = step_path(out, step)
    record = json.loads(path.read_text()) if path.is_file() else None
    if exit_code in (124, 137):  # timeout(1): the limit was reached (137: killed after the grace period)
        record = {**(record or {}), "status": "timeout",
                  "error": f"stopped at its time limit of {limit:.0f} s (exit code {exit_code})"}
    elif record is None:
        log = out / "logs" / f"{step}.log"
        tail = log.read_text(errors="replace")[-2000:] if log.is_file() else ""
        record = {"status": "failed", "error": f"exited with code {exit_code} before recording a result",
                  "log_tail": tail}
    record.update(seconds=round(seconds, 1), limit_s=round(limit), exit_code=exit_code)
    write_json(path, record)
    note = record.get("error") or record.get("reason") or ""
    print(f"--- {step}: {record['status']} in {seconds:.0f} s{': ' + note if note else ''}", flush=True)


def skip_for_budget(out: Path, step: str, left: float) -> None:
    """The shell had too little of the check's budget left to start the step."""
    write_json(step_path(out, step), {"status": "skipped", "seconds": 0.0,
                                      "reason": f"the check's time budget was spent ({left:.0f} s left)"})
    print(f"--- {step}: skipped, the budget was spent", flush=True)


def collect(out: Path, started: str, smoke: bool, budget: float) -> dict[str, Any]:
    """Every step's record, in order, into OUT/gpu_check.json (a step without a record: "missing")."""
    steps = {}
    for step in STEPS:
        path = step_path(out, step)
        steps[step] = json.loads(path.read_text()) if path.is_file() else {"status": "missing"}
    finished = datetime.now(timezone.utc)
    summary = {"schema": SCHEMA, "mode": "smoke" if smoke else "gpu", "started": started,
               "finished": finished.isoformat(timespec="seconds"),
               "wall_s": round((finished - datetime.fromisoformat(started)).total_seconds(), 1),
               "budget_s": budget, "sizes": sizes(smoke).__dict__,
               "failed": [s for s, r in steps.items() if r["status"] not in ("ok", "skipped")], "steps": steps}
    write_json(out / "gpu_check.json", summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("env", "data", "train", "infer", "experiment", "finish", "collect"))
    parser.add_argument("out", type=Path, help="the check's output folder")
    parser.add_argument("step", nargs="?", help="finish: the step to complete")
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny sizes (the test of the script)")
    parser.add_argument("--precision", choices=("fp32", "amp"), default="fp32", help="train, infer")
    parser.add_argument("--scores", choices=("empty", "saturated"), default="empty",
                        help="infer: no candidate above the threshold, or all (step infer_saturated, fp32)")
    parser.add_argument("--params", default="params/synth/exp4.0.yaml", help="experiment: the params row")
    parser.add_argument("--work", type=Path, default=None,
                        help="data, experiment: where the synthetic data and the run folder go (default OUT/work)")
    parser.add_argument("--exit-code", type=int, default=0, help="finish: the step's exit code")
    parser.add_argument("--seconds", type=float, default=0.0, help="finish: the step's wall time")
    parser.add_argument("--limit", type=float, default=0.0, help="finish: the step's time limit")
    parser.add_argument("--no-time", action="store_true", help="finish: the step was not started (budget spent)")
    parser.add_argument("--started", default=None, help="collect: when the check started (ISO 8601)")
    parser.add_argument("--budget", type=float, default=0.0, help="collect: the check's time budget in seconds")
    args = parser.parse_args(argv)
    out, size = args.out.resolve(), sizes(args.smoke)
    work = (args.work or out / "work").resolve()
    if args.command == "finish":
        if args.no_time:
            skip_for_budget(out, args.step, args.limit)
        else:
            finish(out, args.step, args.exit_code, args.seconds, args.limit)
        return 0
    if args.command == "collect":
        summary = collect(out, args.started or now(), args.smoke, args.budget)
        print(json.dumps({step: record["status"] for step, record in summary["steps"].items()}))
        return 0
    if args.command == "env":
        return record_step(out, "env", environment)
    if args.command == "data":
        return record_step(out, "data", lambda: synthetic_data(work, size))
    if args.command in ("train", "infer"):
        step = f"{args.command}_{args.precision}"
        script, arguments = "train_speed.py", size.train
        if args.command == "infer":
            script, arguments = "infer_speed.py", size.infer + ["--scores", args.scores]
            if args.scores == "saturated":
                step = "infer_saturated"
                arguments = arguments + ["--images", str(size.saturated_images)]  # the last --images wins

        def body() -> dict[str, Any]:
            extra = precision_arguments(size, args.precision)
            require_device(size)
            return speed(out, step, script, arguments + extra)
        return record_step(out, step, body)

    def experiment() -> dict[str, Any]:
        data = step_path(out, "data")
        if not data.is_file() or json.loads(data.read_text())["status"] != "ok":
            raise RuntimeError("the data step did not succeed; the experiment trains on its output")
        require_device(size)
        root = json.loads(data.read_text())["result"]["root"]
        return experiment_result(out, args.params, {**size.overrides, "runs_dir": str(work / "runs"),
                                                    "data_root": root, "backbone_weights": None,
                                                    "overwrite": True})
    return record_step(out, "experiment", experiment)


if __name__ == "__main__":
    sys.exit(main())
