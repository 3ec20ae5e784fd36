"""Turn a `benchmarks/gpu_check.sh` result (OUT_DIR/gpu_check.json) into a benchmarks/RESULTS.md section.

A separate step, run anywhere after the check, so that device time is spent only measuring. The
section states the device, date and versions, which steps passed, and one table per measurement;
a failed or skipped step is listed with its error or reason and leaves its table out.

    python benchmarks/gpu_results_to_markdown.py OUT_DIR [--append benchmarks/RESULTS.md]

Prints the section, or appends it to the given file.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DETECTORS = {"faster_fpn": "Faster-FPN", "adaptive_retinanet": "Adaptive RetinaNet"}


def number(value: float | None, digits: int = 2, unit: str = "") -> str:
    return "–" if value is None else f"{value:,.{digits}f}{unit}"


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def memory(mib: float | None) -> str:
    if mib is None:
        return "–"
    return f"{mib / 1024:.2f} GiB" if mib >= 1024 else f"{mib:.0f} MiB"


def cell(text: Any) -> str:
    """One table cell: a single line, pipes escaped, long errors cut."""
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    line = line.replace("|", "\\|")
    return line if len(line) <= 160 else line[:157] + "..."


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows)]


def header(check: dict[str, Any]) -> list[str]:
    env = check["steps"]["env"].get("result") or {}
    gpus = ", ".join(f"{g['name']} ({g['memory_gib']} GiB)" for g in env.get("gpus", [])) or "no GPU"
    smoke = check["mode"] == "smoke"
    lines = [f"## GPU check (issue 11): `benchmarks/gpu_check.sh`{' — CPU smoke run' if smoke else ''}", ""]
    if env:
        lines += [f"Device: {gpus}; {env['cpu_count']} CPUs ({env['cpu']}), load average "
                  f"{env['load_average'][0]:.1f} at the start. Python {env['python']}, torch {env['torch']} "
                  f"(CUDA {env['cuda'] or '–'}, cuDNN {env['cudnn'] or '–'}), torchvision {env['torchvision']}"
                  f"{', commit ' + env['git_commit'][:10] if env.get('git_commit') else ''}."
                  + (f" Missing modules: {', '.join(env['missing_modules'])}." if env["missing_modules"] else "")]
    else:
        lines += ["Device: unknown (the env step did not run)."]
    lines += [f"Date: {check['started']} to {check['finished']} ({check['wall_s']:.0f} s; step budget "
              f"{check['budget_s']:.0f} s). Command: `bash benchmarks/gpu_check.sh OUT{' --smoke' if smoke else ''}`"
              f"; no network, synthetic data, random initial weights."]
    if smoke:
        lines += ["", "A CPU smoke run at tiny sizes (ResNet-18, small frames, a step or two): it shows that "
                  "the check runs, its figures measure nothing."]
    rows = []
    for name, record in check["steps"].items():
        note = record.get("error") or record.get("reason") or ""
        rows.append([f"`{name}`", record["status"], number(record.get("seconds"), 0, " s"), cell(note)])
    return lines + ["", *table(["step", "status", "wall", "error / reason"], rows)]


def speed_rows(check: dict[str, Any], steps: dict[str, str]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The rows of the passed `steps` (step -> label), tagged with `label`, and the first one's settings."""
    rows, settings = [], None
    for step, label in steps.items():
        record = check["steps"].get(step, {})
        if record.get("status") == "ok":
            settings = settings or record["result"]
            rows += [{**row, "label": label, "frames": record["result"].get("images")}
                     for row in record["result"]["rows"]]
    return rows, settings


def training(check: dict[str, Any]) -> list[str]:
    rows, s = speed_rows(check, {"train_fp32": "fp32", "train_amp": "AMP fp16"})
    if not rows:
        return []
    tile = "×".join(map(str, s["tile"]))
    return ["", "### Training throughput (`benchmarks/train_speed.py`)", "",
            f"{tile} tiles cut from JPEG frames by the real data pipeline, batch {s['batch_size']} per step "
            f"(the paper's 2 GPUs × 1 image), {s['backbone']}, FPN {s['fpn_channels']}, "
            f"{plural(s['workers'], 'DataLoader worker')}, {plural(rows[0]['steps'], 'timed step')} after "
            f"the warm-up, {s['device']}. Data wait: the share of step time spent waiting for the next batch "
            "(target < 10 %).", "",
            *table(["detector", "precision", "images/s", "step", "data wait", "peak GPU memory"],
                   [[DETECTORS.get(r["detector"], r["detector"]), r["label"], number(r["images_per_s"]),
                     number(r["step_s"], 3, " s"), percent(r["data_wait"]), memory(r["peak_gpu_memory_mib"])]
                    for r in rows])]


def inference(check: dict[str, Any]) -> list[str]:
    rows, s = speed_rows(check, {"infer_fp32": "fp32, none pass", "infer_amp": "AMP fp16, none pass",
                                 "infer_saturated": "fp32, all at 0.5"})
    if not rows:
        return []
    frame = "×".join(map(str, s["frame"]))
    return ["", "### Tiled inference (`benchmarks/infer_speed.py`)", "",
            f"{frame} frames, each cut into {plural(s['tiles_per_image'], 'test tile')} of at most 640×512 "
            f"(overlap 100), batch {s['batch_size']} tiles, {s['backbone']}, FPN {s['fpn_channels']}, untrained "
            f"weights, {s['device']}; the frames are timed after one warm-up frame. Scores: \"none pass\" "
            "sets the classifier so that no candidate passes the 0.05 threshold (the detector and the tiling "
            "alone); \"all at 0.5\" makes every candidate pass (the merge, on the CPU, at its worst case). A "
            "trained detector lies between the two.", "",
            *table(["detector", "precision, scores", "frames", "images/s", "tiles/s", "merge share",
                    "detections / image", "peak GPU memory"],
                   [[DETECTORS.get(r["detector"], r["detector"]), r["label"], str(r["frames"]),
                     number(r["images_per_s"]),
                     number(r["tiles_per_s"]), percent(r["merge_share"]), number(r["detections_per_image"], 0),
                     memory(r["peak_gpu_memory_mib"])] for r in rows])]


def experiment(check: dict[str, Any]) -> list[str]:
    result = check["steps"]["experiment"].get("result")
    if not result:
        return []
    overrides = ", ".join(f"{k}: {json.dumps(v)}" for k, v in result["overrides"].items()
                          if k not in ("runs_dir", "data_root"))
    lines = ["", f"### Experiment `{result['params']}`, shortened, through papermill", "",
             f"Overrides: {overrides}. Wall time from each stage's `config.yaml` to its `model_final.pt` "
             "(loader and model building included); step time from `metrics.jsonl`; the full-schedule "
             "estimate is seconds per iteration × the row's epochs × iterations per epoch.", ""]
    rows = []
    for stage, s in result["stages"].items():
        if s is None:
            rows.append([stage, "not run", *["–"] * 6])
            continue
        estimate = s.get("full_schedule_estimate_s")
        full = "–" if estimate is None else f"{estimate / 60:.1f} min ({s['full_schedule_iters']} it.)"
        rows.append([stage, f"{s['iterations']}{'' if s['finished'] else ' (unfinished)'}",
                     f"{s['global_batch']}{' AMP' if s.get('amp') else ''}", number(s["wall_s"], 1, " s"),
                     number(s.get("s_per_iter"), 3, " s"), number(s.get("images_per_s")), percent(s.get("data_wait")),
                     full])
    rows.append([f"evaluation ({plural(result.get('test_images', 0), 'test image')})", "–", "–",
                 number(result.get("evaluation_s"), 1, " s"), "–", "–", "–", "–"])
    lines += table(["stage", "iterations", "batch", "wall", "step / iteration", "images/s", "data wait",
                    "full schedule"], rows)
    slowest = sorted(result.get("cells", []), key=lambda c: -c["seconds"])[:3]
    lines += ["", f"AP50_tiny {number(result.get('AP50_tiny'))} (a shortened run from random weights: a timing, "
              f"not a result). The whole notebook: {number(result['notebook_s'], 0, ' s')}; its slowest cells: "
              + "; ".join(f"{c['seconds']:.1f} s `{c['source']}`" for c in slowest) + "."]
    return lines


def to_markdown(check: dict[str, Any]) -> str:
    return "\n".join(header(check) + training(check) + inference(check) + experiment(check)) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the check's output folder (holds gpu_check.json)")
    parser.add_argument("--append", type=Path, default=None, metavar="MD", help="append the section to this file")
    args = parser.parse_args(argv)
    section = to_markdown(json.loads((args.out / "gpu_check.json").read_text()))
    if args.append is None:
        sys.stdout.write(section)
    else:
        with args.append.open("a") as stream:
            stream.write("\n" + section)
        print(f"appended to {args.append}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
