"""The reproduction pipeline: size distribution, one experiment notebook per params file, results.

Each step is a papermill execution of a notebook in notebooks/ with the stock `python3` kernel of
the running environment, started in the repository root (the notebooks resolve their paths from
there anyway). The executed notebook is the record of the step: a failed step keeps it, traceback
included, and stops the pipeline.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from tinysm.config import ConfigError
from tinysm.experiments.config import ExperimentConfig, load_experiment_config
from tinysm.paths import repo_root, resolve

NOTEBOOKS = Path("notebooks")
BASE_PREFIX = "base"  # base.yaml, base-<detector>.yaml: what a params folder's rows share; not rows
EXPERIMENT_ORDER = ("exp1.2", "exp4.0", "exp4.1", "exp4.2", "exp2.3", "exp5.1", "exp5.2")  # reference §8

Executor = Callable[[Path, Path, dict[str, Any]], None]


@dataclass(frozen=True)
class NotebookJob:
    """One papermill execution: `notebook` with `parameters`, recorded in `output`."""

    name: str
    notebook: Path
    output: Path
    parameters: dict[str, Any] = field(default_factory=dict)
    finished_marker: Path | None = None  # exists once the job's work is done (experiments only)

    def is_finished(self) -> bool:
        return self.finished_marker is not None and self.finished_marker.is_file()


class NotebookFailed(RuntimeError):
    """A notebook raised; its executed copy (with the traceback) is at `output`."""

    def __init__(self, job: NotebookJob, cause: BaseException):
        self.job = job
        # papermill's error carries the kernel's exception name and message.
        name, message = getattr(cause, "ename", type(cause).__name__), getattr(cause, "evalue", str(cause))
        super().__init__(f"{job.name}: {name}: {message}\n  the executed notebook with the traceback is "
                         f"kept at {job.output}")


def params_files(params_dir: str | Path) -> list[Path]:
    """The row files of a params folder: every *.yaml but the shared bases (`base.yaml`, `base-*.yaml`)."""
    folder = resolve(params_dir)
    files = sorted(path for path in folder.glob("*.yaml") if not path.name.startswith(BASE_PREFIX))
    if not files:
        raise FileNotFoundError(f"{folder}: no params files (*.yaml besides the {BASE_PREFIX}* files)")
    return files


def load_experiments(params_dir: str | Path, only: Iterable[str] = ()) -> list[ExperimentConfig]:
    """Every row file of `params_dir` as a validated config, in the paper's order; `only` filters."""
    files = params_files(params_dir)
    folder = files[0].parent
    configs = [load_experiment_config(path) for path in files]
    for path, config in zip(files, configs):
        if config.experiment != path.stem:
            raise ConfigError(f"{path}: 'experiment' is {config.experiment!r}, expected the file's "
                              f"name {path.stem!r}")
    wanted = list(only)
    unknown = sorted(set(wanted) - {c.experiment for c in configs})
    if unknown:
        raise ValueError(f"--only {' '.join(unknown)}: no such params file in {folder}")
    rank = {name: i for i, name in enumerate(EXPERIMENT_ORDER)}
    configs.sort(key=lambda c: (rank.get(c.experiment, len(rank)), c.experiment))
    return [c for c in configs if not wanted or c.experiment in wanted]


def shared_runs_dir(configs: list[ExperimentConfig]) -> Path:
    """The one runs folder the experiments write to (the results notebook reads it)."""
    folders = {resolve(c.runs_dir) for c in configs}
    if len(folders) != 1:
        raise ConfigError(f"params files write to several runs_dir {sorted(map(str, folders))}; "
                          "the results table reads one")
    return folders.pop()


def plan_jobs(configs: list[ExperimentConfig], params_dir: str | Path, figures_dir: Path, force: bool,
              size_parameters: dict[str, Any]) -> list[NotebookJob]:
    """Size distribution, then each experiment (its row file of `params_dir`), then the results
    table, as notebook jobs."""
    runs_dir = shared_runs_dir(configs)
    jobs = [NotebookJob("size_distribution", NOTEBOOKS / "size_distribution.ipynb",
                        runs_dir / "size_distribution.ipynb",
                        {**size_parameters, "output_dir": str(figures_dir)})]
    for config in configs:
        parameters = {"params": str(resolve(params_dir) / f"{config.experiment}.yaml"),
                      "overrides": {"overwrite": force or config.overwrite}}
        jobs.append(NotebookJob(config.experiment, NOTEBOOKS / "experiment.ipynb",
                                config.run_dir / "experiment.ipynb", parameters,
                                finished_marker=config.run_dir / "metrics.json"))
    jobs.append(NotebookJob("results", NOTEBOOKS / "results.ipynb", runs_dir / "results.ipynb",
                            {"runs_dir": str(runs_dir), "figures_dir": str(figures_dir)}))
    return jobs


def execute_with_papermill(notebook: Path, output: Path, parameters: dict[str, Any]) -> None:
    """Run `notebook` with papermill and the stock `python3` kernel, cwd = repository root."""
    import papermill

    output.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(resolve(notebook)), str(output), parameters=parameters,
                               kernel_name="python3", cwd=str(repo_root()), progress_bar=False,
                               # the kernel's start-up warnings would break the one-line-per-notebook log
                               extra_arguments=["--IPKernelApp.log_level=ERROR"])


def run_jobs(jobs: list[NotebookJob], force: bool = False, execute: Executor = execute_with_papermill,
             echo: Callable[[str], None] = print) -> list[str]:
    """Execute `jobs` in order, one progress line each; skip finished ones unless `force`.

    Returns the names of the jobs executed; raises `NotebookFailed` at the first failure.
    """
    executed = []
    for index, job in enumerate(jobs, start=1):
        prefix = f"[{index}/{len(jobs)}] {job.name:<18}"
        if job.is_finished() and not force:
            echo(f"{prefix} skipped: finished run at {job.finished_marker.parent} (--force to redo)")
            continue
        start = time.monotonic()
        try:
            execute(job.notebook, job.output, job.parameters)
        except Exception as err:  # papermill raises its own error types; all mean "this step failed"
            echo(f"{prefix} FAILED after {time.monotonic() - start:.0f} s")
            raise NotebookFailed(job, err) from err
        echo(f"{prefix} done in {time.monotonic() - start:.0f} s -> {job.output}")
        executed.append(job.name)
        sys.stdout.flush()
    return executed
