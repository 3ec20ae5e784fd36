"""Speed of the synthetic data generator at the issue's sizes (issue 2, item 6).

Writes 100 + 100 TinyPerson frames (1280×720 to 1920×1080, with the erased copies, the "all",
mini and tile files) and 400 + 50 COCO-like images (~640×480) into a temporary folder, timing
the two halves separately, for each requested number of worker processes (one pool for both,
as `generate` does; its start-up counts in the TinyPerson half). CPU seconds include the worker
processes once they have exited. The 1-minute load average is recorded because the machine may be shared.

    python benchmarks/synth_speed.py [--workers 1 2] [--train 100] [--test 100] [--coco-train 400]

Prints a table and writes benchmarks/out/synth_speed.json.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinysm.data.synth.coco import write_coco  # noqa: E402
from tinysm.data.synth.tinyperson import write_tinyperson  # noqa: E402
from tinysm.data.synth.workers import FramePool  # noqa: E402
from tinysm.io import atomic_write_json  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "synth_speed.json"


def cpu_seconds() -> float:
    """User + system time of this process and its reaped children (the worker processes)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def wall_seconds(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--train", type=int, default=100)
    parser.add_argument("--test", type=int, default=100)
    parser.add_argument("--coco-train", type=int, default=400)
    parser.add_argument("--coco-val", type=int, default=50)
    args = parser.parse_args()
    # torch (for the erase step) is imported before timing, so that no row pays for it; here and
    # not at the top, because spawned workers re-import this script's top level.
    import tinysm.data.erase  # noqa: F401

    rows = []
    for workers in args.workers:
        load = os.getloadavg()[0]
        cpu = cpu_seconds()
        with tempfile.TemporaryDirectory() as tmp, FramePool(workers) as pool:
            tiny = wall_seconds(write_tinyperson, Path(tmp) / "tiny_set", 0, args.train, args.test, pool)
            coco = wall_seconds(write_coco, Path(tmp) / "coco", 0, args.coco_train, args.coco_val, pool)
        rows.append({"workers": workers, "tiny_set_s": tiny, "coco_s": coco, "total_s": tiny + coco,
                     "cpu_s": cpu_seconds() - cpu, "load_1min_before": load})

    print(f"\n{args.train}+{args.test} TinyPerson frames, {args.coco_train}+{args.coco_val} COCO images")
    print(f"{'workers':>7} | {'tiny_set s':>10} | {'coco s':>7} | {'total s':>7} | {'CPU s':>6} | {'load':>5}")
    for row in rows:
        print(f"{row['workers']:>7} | {row['tiny_set_s']:>10.1f} | {row['coco_s']:>7.1f} | {row['total_s']:>7.1f} | "
              f"{row['cpu_s']:>6.1f} | {row['load_1min_before']:>5.2f}")
    atomic_write_json(OUT, {
        "benchmark": "synth_speed", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs", "python": platform.python_version(),
        "sizes": {"train": args.train, "test": args.test, "coco_train": args.coco_train, "coco_val": args.coco_val},
        "rows": rows,
    })
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
