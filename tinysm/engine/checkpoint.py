"""Checkpoints: written atomically, read with `weights_only=True`, and complete enough to resume
a run exactly (model, optimiser, scheduler, GradScaler, every process's RNG streams, position).

A checkpoint is a dict whose "model" entry is the detector's state_dict (the contract
`tinysm.models.load_matching_weights` reads); the rest is plain tensors, numbers and strings.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tinysm.io import atomic_path

FORMAT = "tinysm-checkpoint-1"


def capture_rng_state() -> dict[str, Any]:
    """This process's python, numpy, torch (and CUDA) RNG states as weights_only-loadable values."""
    numpy_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy_key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
        "numpy_pos": int(numpy_state["state"]["pos"]),
        "numpy_gauss": (int(numpy_state["has_gauss"]), float(numpy_state["gauss"])),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Undo `capture_rng_state`: every stream continues where it was captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    has_gauss, cached_gauss = state["numpy_gauss"]
    np.random.set_state({"bit_generator": "MT19937", "has_gauss": has_gauss, "gauss": cached_gauss,
                         "state": {"key": state["numpy_key"].numpy().astype(np.uint32),
                                   "pos": state["numpy_pos"]}})
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class TrainingState:
    """Everything a run resumes from; `iteration` counts the optimiser steps taken so far."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    iters_per_epoch: int
    iteration: int = 0

    @property
    def epoch(self) -> int:
        return self.iteration // self.iters_per_epoch

    def to_checkpoint(self, rng_states: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        """The checkpoint dict; `rng_states` holds one entry per process, in rank order."""
        return {
            "format": FORMAT, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
            "rng": rng_states, "iteration": self.iteration, "iters_per_epoch": self.iters_per_epoch,
            **extra,
        }

    def restore(self, checkpoint: dict[str, Any], source: Path, rank: int = 0) -> None:
        """Continue from `checkpoint` (read from `source`) exactly where it was written."""
        if checkpoint.get("format") != FORMAT:
            raise ValueError(f"{source}: not a tinysm training checkpoint (format {checkpoint.get('format')!r})")
        if checkpoint["iters_per_epoch"] != self.iters_per_epoch:
            raise ValueError(f"{source}: written with {checkpoint['iters_per_epoch']} iterations per epoch, "
                             f"this run has {self.iters_per_epoch}: the data, batch size or number of "
                             "processes changed, so the run cannot resume exactly")
        if len(checkpoint["rng"]) <= rank:
            raise ValueError(f"{source}: written by {len(checkpoint['rng'])} process(es), "
                             f"cannot resume rank {rank}; resume with the same number of processes")
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.scaler.load_state_dict(checkpoint["scaler"])
        restore_rng_state(checkpoint["rng"][rank])
        self.iteration = checkpoint["iteration"]


def save_checkpoint(checkpoint: dict[str, Any], path: str | Path) -> Path:
    """Write atomically: an interrupted save leaves the previous checkpoint untouched.

    torch reports a failed write (a full disk, a quota) as a RuntimeError from its zip writer; it
    becomes an OSError naming the checkpoint, so the command line says it in one line.
    """
    with atomic_path(path) as tmp:
        try:
            torch.save(checkpoint, tmp)
        except RuntimeError as err:
            raise OSError(f"{path}: the checkpoint could not be written ({str(err).splitlines()[0]}); "
                          "is the disk full?") from err
    return Path(path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint read on the CPU with `weights_only=True` (no code runs on load)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise ValueError(f"{path}: cannot read this checkpoint: {err}") from None
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        raise ValueError(f"{path}: a checkpoint must be a dict with a 'model' state_dict")
    return checkpoint
