"""`METHODS`: the size-matching methods by name, the one table that the engine's pre-training data,
the experiments' params files and the size-distribution figure iterate.

Each method builds its transform from the target annotations (the tiny objects whose sizes are
wanted), the source annotations (the external set being rescaled) and `SizeMatchSettings`. A new
method is a transform class plus one entry here; `pretrain: <name>` then works in params files.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from tinysm.data.annotations import CocoAnnotations
from tinysm.scale_match.sizes import SizeDistribution, UniformSource, object_sizes
from tinysm.scale_match.transforms import GaussianScaleMatch, MonotoneScaleMatch, ScaleMatch, SizeMatchTransform


@dataclass(frozen=True)
class SizeMatchSettings:
    """The knobs every published run used (reference §3–§5); each method reads those it has."""

    bins: int = 100
    tail_rate: float | None = None           # None: 2 / bins (reference §3)
    scale_range: tuple[float, float] = (0.1, 1.0)
    default_scale: float = 0.25
    max_tries: int = 5                       # ScaleMatch's draws per image (reference §4 step 2)
    rng: UniformSource | None = None         # ScaleMatch's random stream; None: one per worker
    resize: str = "reference"                # RESIZE_RULES: the reference's pixels (§4) or antialiased


@dataclass(frozen=True)
class SizeMatchMethod:
    """One size-matching method: how figures and tables name it, and how to build it."""

    label: str
    build: Callable[[CocoAnnotations, CocoAnnotations, SizeMatchSettings], SizeMatchTransform]


def target_histogram(target: CocoAnnotations, settings: SizeMatchSettings) -> SizeDistribution:
    """The target's rectified histogram (reference §3)."""
    return SizeDistribution.from_coco(target, settings.bins, settings.tail_rate)


def build_scale_match(target: CocoAnnotations, source: CocoAnnotations, settings: SizeMatchSettings) -> ScaleMatch:
    """reference §4: random per image; the source set is not read."""
    return ScaleMatch(target_histogram(target, settings), settings.scale_range, settings.default_scale,
                      settings.max_tries, rng=settings.rng, resize=settings.resize)


def build_monotone_scale_match(target: CocoAnnotations, source: CocoAnnotations,
                               settings: SizeMatchSettings) -> MonotoneScaleMatch:
    """reference §5: the source's whole size distribution mapped onto the target's."""
    return MonotoneScaleMatch(target_histogram(target, settings), source, settings.scale_range,
                              settings.default_scale, settings.resize)


def log_normal_fit(sizes: np.ndarray) -> tuple[float, float]:
    """(mu, sigma) of the log-normal with the sizes' mean m and standard deviation d:
    sigma² = ln(1 + d²/m²), mu = ln m − sigma²/2."""
    mean, std = float(np.mean(sizes)), float(np.std(sizes))
    variance = float(np.log1p((std / mean) ** 2))
    return float(np.log(mean)) - variance / 2, variance ** 0.5


def build_gaussian_scale_match(target: CocoAnnotations, source: CocoAnnotations,
                               settings: SizeMatchSettings) -> GaussianScaleMatch:
    """reference §5's log-normal variant, its target fitted to the target set's object sizes."""
    mu, sigma = log_normal_fit(object_sizes(target))
    return GaussianScaleMatch(mu, sigma, source, settings.bins, settings.scale_range, settings.default_scale,
                              settings.resize)


METHODS: dict[str, SizeMatchMethod] = {
    "sm": SizeMatchMethod("SM", build_scale_match),
    "msm": SizeMatchMethod("MSM", build_monotone_scale_match),
    "gaussian": SizeMatchMethod("Gaussian SM", build_gaussian_scale_match),
}
