"""The learning-rate schedule of reference §8: linear warm-up, then ×gamma at milestone epochs.

Stepped once per iteration. The warm-up is the reference's (mmdetection's "linear"): over the first
`warmup_iters` iterations the factor rises linearly from `warmup_ratio` to 1, multiplying the
regular (already decayed) rate.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.optim.lr_scheduler import LambdaLR


@dataclass
class WarmupMultiStep:
    """LR factor of an iteration (0-based): warm-up × gamma ** (milestones reached by its epoch)."""

    iters_per_epoch: int
    milestones: tuple[int, ...] = (8, 11)
    warmup_iters: int = 500
    warmup_ratio: float = 0.001
    gamma: float = 0.1

    def __call__(self, iteration: int) -> float:
        epoch = iteration // self.iters_per_epoch
        # "×0.1 after epochs 8 and 11": epochs 0–7 at the base rate, 8–10 at 0.1×, 11 at 0.01×.
        factor = self.gamma ** sum(epoch >= milestone for milestone in self.milestones)
        if iteration < self.warmup_iters:
            factor *= self.warmup_ratio + (1 - self.warmup_ratio) * iteration / self.warmup_iters
        return factor


def build_scheduler(optimizer: torch.optim.Optimizer, schedule: WarmupMultiStep) -> LambdaLR:
    """A per-iteration `LambdaLR`; its state_dict carries the schedule's fields and position."""
    return LambdaLR(optimizer, schedule)
