"""`tinysm reproduce`: data check, then every notebook of the paper's table through papermill."""
from __future__ import annotations

import argparse

HELP = "run the size-distribution, experiment and results notebooks for a params folder (papermill)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default=None, metavar="DIR",
                        help="params folder (default: params/synth with CUDA, else params/cpu; "
                             "params/paper runs the real-data experiments)")
    parser.add_argument("--only", nargs="+", default=(), metavar="EXP",
                        help="run only these experiments, e.g. --only exp4.0 exp5.1")
    parser.add_argument("--force", action="store_true", help="re-run experiments that have finished")
    parser.add_argument("--data", default="data", metavar="DIR",
                        help="where data/tiny_set and data/coco are looked for, and data/synthetic "
                             "is generated when they are not there (default: data)")
    parser.add_argument("--figures", default="figures", metavar="DIR",
                        help="where figures and the results table go (default: figures)")


def default_params_dir() -> str:
    """params/synth when a GPU is there to train on, else the CPU-sized params/cpu."""
    import torch

    return "params/synth" if torch.cuda.is_available() else "params/cpu"


def run(args: argparse.Namespace) -> int:
    from tinysm.paths import resolve
    from tinysm.experiments.reproduce import NotebookFailed, load_experiments, plan_jobs, run_jobs, shared_runs_dir
    from tinysm.experiments.results_table import collect_metrics
    from tinysm.experiments.study import results_view
    from tinysm.experiments.reproduce_data import prepare_data

    params_dir = args.params or default_params_dir()
    configs = load_experiments(params_dir, args.only)  # bad params fail here, before any work
    print(f"[tinysm] params: {params_dir} ({', '.join(c.experiment for c in configs)})")
    size_parameters = prepare_data(resolve(args.data), configs)
    jobs = plan_jobs(configs, params_dir, resolve(args.figures), args.force, size_parameters)
    try:
        run_jobs(jobs, force=args.force)
    except NotebookFailed as err:
        print(f"tinysm reproduce: failed: {err}")
        return 1
    figures = resolve(args.figures)
    runs = shared_runs_dir(configs)
    table = figures / ("cpu_study.md" if results_view(collect_metrics(runs)) == "study" else "results_table.md")
    print(f"[tinysm] {table.name}:\n{table.read_text()}" if table.is_file() else "")
    print(f"[tinysm] runs (executed notebooks, configs, logs, checkpoints, results.json, metrics.json): {runs}\n"
          f"[tinysm] figures and tables: {figures}")
    return 0
