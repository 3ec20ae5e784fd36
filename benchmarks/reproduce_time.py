"""Wall time of `tinysm reproduce`, per notebook and in total (the budget: `make reproduce` on the
2-core CPU, params/cpu, <= 20 min after the install, data generation included; params/cpu_study
<= 90 min).

    python benchmarks/reproduce_time.py --params params/cpu            # time a fresh run (--force)
    python benchmarks/reproduce_time.py --params params/cpu --no-run   # read the last run's notebooks

The per-notebook times are papermill's own records in the executed notebooks (start to end of
execution, kernel start included); the total is the wall time of the whole command when it ran here.
Prints a table and writes benchmarks/out/reproduce_time.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tinysm.experiments.reproduce import load_experiments, shared_runs_dir  # noqa: E402


def notebook_seconds(path: Path) -> float | None:
    """papermill's recorded execution time of an executed notebook (None when it never ran)."""
    if not path.is_file():
        return None
    record = nbformat.read(path, as_version=4).metadata.get("papermill", {})
    return record.get("duration")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params/cpu")
    parser.add_argument("--no-run", action="store_true", help="only read the notebooks of the last run")
    args = parser.parse_args()

    total, load_before = None, os.getloadavg()
    if not args.no_run:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "tinysm", "reproduce", "--params", args.params, "--force"],
                       cwd=ROOT, check=True)
        total = time.perf_counter() - start
    configs = load_experiments(args.params)
    runs = shared_runs_dir(configs)
    rows = [("size_distribution", notebook_seconds(runs / "size_distribution.ipynb"))]
    rows += [(c.experiment, notebook_seconds(c.run_dir / "experiment.ipynb")) for c in configs]
    rows.append(("results", notebook_seconds(runs / "results.ipynb")))
    experiments = [s for name, s in rows[1:-1] if s is not None]

    width = max(len(name) for name, _ in rows) + 2
    print(f"{'notebook':<{width}}{'wall (s)':>10}")
    for name, seconds in rows:
        print(f"{name:<{width}}{'–' if seconds is None else f'{seconds:.0f}':>10}")
    print(f"{f'{len(experiments)} experiments':<{width}}{sum(experiments):>10.0f}")
    if total is not None:
        print(f"{'whole command':<{width}}{total:>10.0f}")

    out = ROOT / "benchmarks" / "out" / "reproduce_time.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "params": args.params, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_before": load_before, "load_average_after": os.getloadavg(), "notebook_seconds": dict(rows),
        "experiments_seconds": sum(experiments), "command_seconds": total,
    }, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
