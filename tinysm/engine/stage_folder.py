"""A stage's `out_dir` as a record (docs/architecture.md, rules of the house): who may write it, which
config it holds, and whether it has finished.

- One writer: `claim_stage` locks the folder (`tinysm.locks`) on rank 0 before anything is written
  and tells every rank the outcome, so that under torchrun all of them stop together when another
  run holds it. With the lock held, the temporary files an interrupted atomic write left are removed.
- One config: the folder's `config.yaml` is the config that ran. Another config may resume it only
  in the keys of `RESUMABLE_CHANGES`; a finished stage is reused only for a config equal to its
  record in everything but `FINISHED_CHANGES` (how it ran, not what it computed).
- Finished means a complete final checkpoint: `finished.json`, written atomically after
  `model_final.pt`, holds that file's size and SHA-256. A final checkpoint it does not describe (a
  truncated copy, a crash between the two writes, an older tinysm) is not a finished stage: when
  `checkpoint_last.pt` can be read the stage resumes from it (after the last step it holds the
  final weights, so nothing is trained again and model_final.pt is rewritten); otherwise training
  stops with a line saying which files to delete. A digest rather than a trial `torch.load`: both
  read the file once (about a second per GB), but torch loads a checkpoint with a flipped byte in
  a tensor without a word, and only the digest also tells a complete file from another complete one.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tinysm.config import config_to_dict
from tinysm.engine.config import RunPaths, TrainConfig, recorded_with_defaults
from tinysm.engine.distributed import DistributedContext, gather_objects
from tinysm.io import atomic_write_json, atomic_write_text, remove_stray_temporaries
from tinysm.locks import FolderInUse, FolderLock, lock_folder

# Keys that may change between a run and its resumption without changing what is computed.
RESUMABLE_CHANGES = frozenset({"device", "workers", "log_every", "checkpoint_every", "eval_every", "max_iters"})
# A finished stage stopped at its max_iters: another max_iters asks for another model.
FINISHED_CHANGES = RESUMABLE_CHANGES - {"max_iters"}


class DamagedStage(RuntimeError):
    """The stage's final checkpoint is damaged and no checkpoint to finish it again from is intact."""


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def write_finished(paths: RunPaths, iteration: int) -> Path:
    """Mark the stage finished: the final checkpoint's size and digest, written after the checkpoint."""
    final = paths.final_checkpoint
    return atomic_write_json(paths.finished, {"checkpoint": final.name, "bytes": final.stat().st_size,
                                              "sha256": file_digest(final), "iteration": iteration})


def final_checkpoint_problem(paths: RunPaths) -> str | None:
    """None when `finished.json` describes the final checkpoint that is there; otherwise what is
    wrong, in words (for a folder without a final checkpoint: 'no final checkpoint')."""
    final = paths.final_checkpoint
    if not final.is_file():
        return "no final checkpoint"
    try:
        record: dict[str, Any] = json.loads(paths.finished.read_text())
        expected_bytes, expected_digest = int(record["bytes"]), str(record["sha256"])
    except FileNotFoundError:
        return f"no {paths.finished.name} describes it (the write was interrupted, or an older tinysm wrote it)"
    except (ValueError, KeyError, TypeError):
        return f"{paths.finished.name} cannot be read"
    size = final.stat().st_size
    if size != expected_bytes:
        return f"it has {size} bytes, {paths.finished.name} records {expected_bytes} (a truncated or foreign file)"
    if file_digest(final) != expected_digest:
        return f"its SHA-256 is not the one {paths.finished.name} records (the file was damaged or replaced)"
    return None


def is_finished(paths: RunPaths) -> bool:
    """The stage has finished and its final checkpoint is complete."""
    return final_checkpoint_problem(paths) is None


def recorded_config(paths: RunPaths) -> dict[str, Any] | None:
    """The config recorded in the folder, None when there is none."""
    if not paths.config.is_file():
        return None
    return yaml.safe_load(paths.config.read_text()) or {}


def config_differences(config: TrainConfig, recorded: dict[str, Any], finished: bool) -> list[str]:
    """The keys in which `config` differs from `recorded` in what it computes (sorted)."""
    current = config_to_dict(config)
    ignored = FINISHED_CHANGES if finished else RESUMABLE_CHANGES
    recorded = recorded_with_defaults(recorded)
    return sorted(key for key in current.keys() | recorded.keys()
                  if key not in ignored and current.get(key) != recorded.get(key))


def holds_progress(paths: RunPaths) -> bool:
    """Whether the folder holds training to resume or reuse. A folder with a config but no checkpoint
    (a run that stopped before its first checkpoint, e.g. on a bad annotation file) holds none."""
    return paths.last_checkpoint.is_file() or paths.final_checkpoint.is_file()


def record_conflict(config: TrainConfig, paths: RunPaths, finished: bool) -> str | None:
    """Why `config` may not resume (or, `finished`, reuse) the run in its folder; None when it may."""
    previous = recorded_config(paths)
    if not holds_progress(paths):
        return None
    if previous is None:
        return None if not finished else f"{paths.out_dir} holds a finished stage without its {paths.config.name}"
    changed = config_differences(config, previous, finished)
    if not changed:
        return None
    if finished:
        extend = (" (to train it further instead, delete model_final.pt and finished.json there: it resumes "
                  "from checkpoint_last.pt)" if changed == ["max_iters"] else "")
        return f"{paths.out_dir} holds a finished stage of another config (differs in {changed}){extend}"
    return f"{paths.out_dir} holds a run with another config (differs in {changed})"


def check_run_folder(config: TrainConfig, paths: RunPaths, record: bool = True, finished: bool = False) -> None:
    """Refuse an `out_dir` holding a run of another config (`record_conflict`); otherwise record
    (`record`) this config there, except in a `finished` stage, whose record is the config that ran.

    Every process checks, so that under torchrun all of them stop together on a foreign folder.
    """
    conflict = record_conflict(config, paths, finished)
    if conflict is not None:
        raise FileExistsError(f"{conflict}; choose another out_dir or delete that one")
    if record and not finished:
        atomic_write_text(paths.config, yaml.safe_dump(config_to_dict(config), sort_keys=False))


@dataclass(frozen=True)
class StageClaim:
    """What rank 0 found on claiming the folder, as every rank learns it."""

    damaged: str | None = None          # the final checkpoint is there but not complete: why
    finished: bool = False              # a complete final checkpoint is there
    error: tuple[str, str] | None = None  # rank 0 could not claim the folder: (exception type, message)


# The errors rank 0 may meet in claiming a folder, re-raised as such on the other ranks.
CLAIM_ERRORS: dict[str, type[Exception]] = {kind.__name__: kind for kind in (FolderInUse, DamagedStage)}


def claim_stage(paths: RunPaths, context: DistributedContext, what: str) -> tuple[FolderLock | None, StageClaim]:
    """Lock the stage folder on rank 0, remove stray temporary files, and look at its final checkpoint;
    every rank returns rank 0's findings. Raises `FolderInUse` (on every rank) when another run
    holds the folder and `DamagedStage` when the final checkpoint is damaged beyond repair here."""
    lock, claim, failure = None, StageClaim(), None
    if context.is_main:
        try:
            lock = lock_folder(paths.out_dir, what)
            remove_stray_temporaries(paths.out_dir)
            claim = inspect_final(paths)
        except Exception as err:
            if lock is not None:
                lock.release()
            if not context.distributed:
                raise
            failure = err  # the other ranks must hear of it, or they wait for rank 0 forever
            claim = StageClaim(error=(type(err).__name__, str(err)))
    claim = gather_objects(claim, context)[0]
    if claim.error is not None:
        if failure is not None:
            raise failure
        kind, message = claim.error
        raise CLAIM_ERRORS.get(kind, RuntimeError)(message)
    return lock, claim


def inspect_final(paths: RunPaths) -> StageClaim:
    """Finished, never finished, or damaged; damaged with no intact last checkpoint is an error."""
    problem = final_checkpoint_problem(paths)
    if problem is None:
        return StageClaim(finished=True)
    if not paths.final_checkpoint.is_file():
        return StageClaim()
    from tinysm.engine.checkpoint import load_checkpoint

    try:
        load_checkpoint(paths.last_checkpoint)
    except (FileNotFoundError, ValueError) as err:
        raise DamagedStage(
            f"{paths.final_checkpoint} is not a complete final checkpoint ({problem}) and there is no intact "
            f"checkpoint to finish the stage from ({err}); delete {paths.final_checkpoint.name}, "
            f"{paths.finished.name} and {paths.last_checkpoint.name} in {paths.out_dir} to train this stage "
            "again from the start") from None
    return StageClaim(damaged=problem)
