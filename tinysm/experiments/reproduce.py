"""The reproduction pipeline: size distribution, one experiment notebook per params file, results.

Each step is a papermill execution of a notebook in notebooks/ with the stock `python3` kernel of
the running environment, started in the repository root (the notebooks resolve their paths from
there anyway). The executed notebook is the record of the step: a failed step keeps it, traceback
included, and stops the pipeline.

papermill writes its output as the notebook runs, so it is never pointed at a record: it writes a
temporary notebook beside it, which replaces the record once the job has run. A job refused before
any work is no run of that experiment: the record stays, and the refused notebook is kept beside it
(`REFUSED_SUFFIX`). Refused means the run folder was another process's, or the job never got to
record its config (`start_run` writes config.yaml after every check: a finished run it was not
asked to redo, missing data, a stage of another config, a bad parameter).
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from tinysm.config import ConfigError
from tinysm.experiments.config import ExperimentConfig, load_experiment_config
from tinysm.experiments.progress import RunWatcher
from tinysm.io import give_ordinary_mode
from tinysm.locks import FolderInUse
from tinysm.paths import repo_root, resolve

NOTEBOOKS = Path("notebooks")
BASE_PREFIX = "base"  # base.yaml, base-<detector>.yaml: what a params folder's rows share; not rows
EXPERIMENT_ORDER = ("exp1.2", "exp4.0", "exp4.1", "exp4.2", "exp2.3", "exp5.1", "exp5.2")  # reference §8
REFUSED_SUFFIX = ".refused.ipynb"  # experiment.ipynb -> experiment.refused.ipynb

Executor = Callable[[Path, Path, dict[str, Any]], None]


@dataclass(frozen=True)
class NotebookJob:
    """One papermill execution: `notebook` with `parameters`, recorded in `output`."""

    name: str
    notebook: Path
    output: Path
    parameters: dict[str, Any] = field(default_factory=dict)
    finished_marker: Path | None = None  # exists once the job's work is done (experiments only)
    started_marker: Path | None = None   # rewritten when the job's work starts (experiments only)

    def is_finished(self) -> bool:
        return self.finished_marker is not None and self.finished_marker.is_file()

    def start_stamp(self) -> tuple[int, int] | None:
        """Identifies the started marker's current version (atomic writes give it a new inode)."""
        if self.started_marker is None or not self.started_marker.is_file():
            return None
        stat = self.started_marker.stat()
        return stat.st_ino, stat.st_mtime_ns


class NotebookFailed(RuntimeError):
    """A notebook raised; its executed copy (with the traceback) is at `kept_at` (None: none was
    written). `refused`: the job was refused before any work and the run's record is unchanged."""

    def __init__(self, job: NotebookJob, cause: BaseException, kept_at: Path | None, refused: bool = False):
        self.job, self.kept_at, self.refused = job, kept_at, refused
        kept = (f"the executed notebook with the traceback is kept at {kept_at}" if kept_at is not None
                else "no executed notebook was written")
        if refused and job.output.is_file():
            kept += f"; the run's record {job.output} is unchanged"
        super().__init__(f"{job.name}: {error_name(cause)}: {getattr(cause, 'evalue', str(cause))}\n  {kept}")


def error_name(error: BaseException) -> str:
    """The kernel's exception name for a papermill error (it carries it as `ename`), else the type's."""
    return getattr(error, "ename", type(error).__name__)


def refused_copy(output: Path) -> Path:
    """Where a refused job's notebook is kept, beside the record it must not replace."""
    return output.with_name(output.name.removesuffix(".ipynb") + REFUSED_SUFFIX)


def keeps_the_record(job: NotebookJob, error: BaseException, stamp_before: tuple[int, int] | None) -> bool:
    """Whether a failed job must leave the record (`job.output`) as it is: there is one, and
    another process holds the run or the job never started work (its started marker is as it was)."""
    if not job.output.is_file():
        return False  # no record to keep: the failure is the record
    if error_name(error) == FolderInUse.__name__:
        return True
    return job.started_marker is not None and job.start_stamp() == stamp_before


def execute_job(job: NotebookJob, execute: Executor) -> None:
    """Run `job` into a temporary notebook beside its record and move it into place once the job
    has run; a refused job's notebook goes to `refused_copy` instead (see the module's docstring)."""
    job.output.parent.mkdir(parents=True, exist_ok=True)
    stamp_before = job.start_stamp()
    # Not atomic_path's name pattern: the kernel, holding the run folder, removes those as strays.
    fd, name = tempfile.mkstemp(prefix=f".{job.output.stem}.", suffix=".running.ipynb", dir=job.output.parent)
    os.close(fd)
    running = Path(name)
    give_ordinary_mode(running)
    try:
        execute(job.notebook, running, job.parameters)
    except BaseException as err:
        if not running.is_file() or running.stat().st_size == 0:  # stopped before writing anything
            running.unlink(missing_ok=True)
            kept_at, refused = None, keeps_the_record(job, err, stamp_before)
        elif keeps_the_record(job, err, stamp_before):
            kept_at, refused = refused_copy(job.output), True
            os.replace(running, kept_at)
        else:
            kept_at, refused = job.output, False
            os.replace(running, kept_at)  # the failed run is this run's record now
        if not isinstance(err, Exception):
            raise  # Ctrl-C and the like: the notebook is in place, the interrupt goes on
        raise NotebookFailed(job, err, kept_at, refused) from err
    os.replace(running, job.output)


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
                                finished_marker=config.run_dir / "metrics.json",
                                started_marker=config.run_dir / "config.yaml"))
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
        echo(f"{prefix} running -> {job.output}")
        sys.stdout.flush()
        # An experiment's stages report iteration, loss and time left from its run folder meanwhile.
        watcher = RunWatcher(job.finished_marker.parent, echo) if job.finished_marker is not None else None
        if watcher is not None:
            watcher.start()
        try:
            execute_job(job, execute)  # papermill raises its own error types; all mean "this step failed"
        except NotebookFailed as failed:
            echo(f"{prefix} {'REFUSED' if failed.refused else 'FAILED'} after {time.monotonic() - start:.0f} s")
            raise
        finally:
            if watcher is not None:
                watcher.stop()
        echo(f"{prefix} done in {time.monotonic() - start:.0f} s -> {job.output}")
        executed.append(job.name)
        sys.stdout.flush()
    return executed
