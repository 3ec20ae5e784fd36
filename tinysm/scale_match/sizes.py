"""Object sizes and the target's rectified size histogram `SizeDistribution` (reference §3)."""
from __future__ import annotations

import math
import os
from bisect import bisect_left
from dataclasses import dataclass
from functools import cached_property
from statistics import NormalDist
from typing import Any, Protocol, Sequence

import numpy as np

from tinysm.data.annotations import BoxAnnotation, CocoAnnotations, load_annotations

Annotations = str | os.PathLike | CocoAnnotations


class UniformSource(Protocol):
    """What the transforms draw from: numpy's `RandomState` or `Generator`."""

    def uniform(self, low: float = 0.0, high: float = 1.0, size: Any = None) -> Any: ...

# reference §4 step 2 and §5 compare against bin bounds with this slack, exactly as the reference.
BIN_TOLERANCE = 1e-6


def _as_annotations(source: Annotations) -> CocoAnnotations:
    return source if isinstance(source, CocoAnnotations) else load_annotations(source)


def counts_for_size(ann: BoxAnnotation) -> bool:
    """Whether a box enters size distributions: neither crowd nor ignore (reference §3; uncertain counts)."""
    return not (ann.iscrowd or ann.ignore)


def object_sizes(annotations: Annotations) -> np.ndarray:
    """Float64 sizes √(w·h) of every box that `counts_for_size`, and > 0 (reference §3)."""
    anns = _as_annotations(annotations).annotations
    sizes = np.sqrt(np.fromiter((a.bbox[2] * a.bbox[3] for a in anns if counts_for_size(a)), np.float64))
    return sizes[sizes > 0]


def image_mean_sizes(annotations: Annotations) -> np.ndarray:
    """Per image, the geometric mean of `object_sizes` (images without such a box are left out)."""
    coco = _as_annotations(annotations)
    means = []
    for anns in coco.annotations_by_image.values():
        sizes = np.sqrt([a.bbox[2] * a.bbox[3] for a in anns if counts_for_size(a)])
        sizes = sizes[sizes > 0]
        if len(sizes):
            means.append(np.exp(np.log(sizes).mean()))
    return np.asarray(means, dtype=np.float64)


def image_mean_size(boxes_xyxy: Any) -> float | None:
    """reference §4 step 1: geometric mean of √((x2−x1+1)(y2−y1+1)) in float32; None without a valid box."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
    extents = boxes[:, 2:] - boxes[:, :2]
    extents += 1
    areas = extents[:, 0] * extents[:, 1]
    sizes = np.sqrt(areas[areas > 0])  # the reference's `sizes > 0` test, taken before the root
    if len(sizes) == 0:
        return None
    # float32 sum / count is numpy's float32 mean, spelled out because it is on the per-image hot
    # path; float() keeps the float32 value but makes later arithmetic float64, as in the reference.
    return float(np.exp(np.log(sizes).sum() / np.float32(len(sizes))))


@dataclass(frozen=True, eq=False)
class SizeDistribution:
    """A histogram of object sizes: `edges` (K+1 floats) and `probs` (K floats, sum 1).

    The edges ascend, except that the outer edge of a tail bin may lie inside the middle range: numpy's
    histogram of middle sizes that are all one value (reference §3). Every use (sampling, quantiles,
    MSM's map) interpolates between a bin's two edges, so a backward bin still yields sizes between them.
    """

    edges: np.ndarray
    probs: np.ndarray

    def __post_init__(self) -> None:
        edges = np.asarray(self.edges, dtype=np.float64)
        probs = np.asarray(self.probs, dtype=np.float64)
        if edges.ndim != 1 or probs.ndim != 1 or len(edges) != len(probs) + 1 or len(probs) == 0:
            raise ValueError(f"need K+1 edges for K probs, got {edges.shape} edges and {probs.shape} probs")
        if not np.isclose(probs.sum(), 1.0) or (probs < 0).any():
            raise ValueError(f"probs must be >= 0 and sum to 1, got sum {probs.sum()}")
        # numpy's rule widens an all-equal middle to [v - 0.5, v + 0.5], which can leave a tail edge
        # inside it; the reference samples such a backward tail bin by the same formula (reference §3).
        if (np.diff(edges[1:-1]) < 0).any() or edges[0] > edges[-1]:
            raise ValueError("edges must be non-decreasing (only the two tail bins may run backwards)")
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "probs", probs)

    @classmethod
    def from_sizes(cls, sizes: Sequence[float] | np.ndarray, bins: int = 100,
                   tail_rate: float | None = None, log_bins: bool = False) -> "SizeDistribution":
        """The rectified histogram of reference §3; `tail_rate` defaults to 2/bins, 0 means no tail bins."""
        x = np.asarray(sizes, dtype=np.float64).ravel()
        if np.isnan(x).any():
            raise ValueError("sizes contain NaN")
        x = np.sort(x[x > 0])
        e = 2.0 / bins if tail_rate is None else float(tail_rate)
        if not 0 <= e < 1:
            raise ValueError(f"tail_rate must be in [0, 1), got {e}")
        if bins < (3 if e > 0 else 1):
            raise ValueError(f"bins must be >= 3 with tail bins (>= 1 without), got {bins}")
        values = np.log(x) if log_bins else x
        n = len(values)
        lo, hi = int(n * e / 2), int(n * (1 - e / 2))  # int() truncates, as the reference
        if hi <= lo:
            raise ValueError(f"{n} positive sizes are too few for a histogram with tail rate {e}")
        if e > 0:
            middle_counts, middle_edges = np.histogram(values[lo:hi], bins=bins - 2)
            counts = np.concatenate([[lo], middle_counts, [n - hi]])
            edges = np.concatenate([[values[0]], middle_edges, [values[-1]]])
        else:
            counts, edges = np.histogram(values, bins=bins)
        return cls(np.exp(edges) if log_bins else edges, counts / n)

    @classmethod
    def from_coco(cls, annotations: Annotations, bins: int = 100, tail_rate: float | None = None,
                  log_bins: bool = False) -> "SizeDistribution":
        """`from_sizes` over the `object_sizes` of a COCO-format file or `CocoAnnotations`."""
        coco = _as_annotations(annotations)
        try:
            return cls.from_sizes(object_sizes(coco), bins, tail_rate, log_bins)
        except ValueError as err:
            raise ValueError(f"{coco.source or '<in memory>'}: {err}") from None

    @classmethod
    def log_normal(cls, mu: float, sigma: float, bins: int = 100, coverage: float = 0.998) -> "SizeDistribution":
        """K equal-probability bins of a log-normal, ln size ~ N(mu, sigma²), cut to its central `coverage`;
        sigma 0 (a target whose sizes are all one value) is its limit, every edge at exp(mu)."""
        if sigma < 0 or not 0 < coverage < 1:
            raise ValueError(f"need sigma >= 0 and 0 < coverage < 1, got sigma={sigma}, coverage={coverage}")
        if sigma == 0:
            return cls(np.full(bins + 1, math.exp(mu)), np.full(bins, 1.0 / bins))
        tail = (1 - coverage) / 2
        normal = NormalDist(mu, sigma)
        log_edges = [normal.inv_cdf(tail + coverage * k / bins) for k in range(bins + 1)]
        return cls(np.exp(log_edges), np.full(bins, 1.0 / bins))

    @cached_property
    def cdf(self) -> np.ndarray:
        """C[k] = probs[0] + … + probs[k] (K floats, the last ≈ 1)."""
        return np.cumsum(self.probs)

    def sample(self, rng: UniformSource, n: int) -> np.ndarray:
        """`n` sizes drawn as reference §4 step 2: per draw r picks the bin, then u the place in it."""
        r, u = np.asarray(rng.uniform(size=(n, 2)), dtype=np.float64).reshape(n, 2).T
        bins = np.minimum(np.searchsorted(self.cdf + BIN_TOLERANCE, r, side="left"), len(self.probs) - 1)
        return self.edges[bins] + u * (self.edges[bins + 1] - self.edges[bins])

    def draw(self, rng: UniformSource) -> float:
        """One size, draw for draw equal to `sample(rng, 1)[0]`, without numpy's per-call overhead."""
        bounds, edges = self._draw_tables
        k = min(bisect_left(bounds, rng.uniform()), len(bounds) - 1)
        return edges[k] + rng.uniform() * (edges[k + 1] - edges[k])

    @cached_property
    def _draw_tables(self) -> tuple[list[float], list[float]]:
        return (self.cdf + BIN_TOLERANCE).tolist(), self.edges.tolist()

    def quantile(self, q: float | np.ndarray) -> np.ndarray:
        """The inverse of the piecewise-linear CDF (uniform density inside each bin)."""
        q = np.clip(np.asarray(q, dtype=np.float64), 0.0, 1.0)
        cdf = self.cdf
        k = np.minimum(np.searchsorted(cdf, q, side="left"), len(self.probs) - 1)
        below = np.where(k > 0, cdf[k - 1], 0.0)
        width = self.probs[k]
        inside = np.divide(q - below, width, out=np.zeros_like(q), where=width > 0)
        return self.edges[k] + np.clip(inside, 0.0, 1.0) * (self.edges[k + 1] - self.edges[k])

    def to_dict(self) -> dict[str, list[float]]:
        """Plain lists for JSON."""
        return {"edges": self.edges.tolist(), "probs": self.probs.tolist()}
