"""Scale Match (Yu et al., WACV 2020): rescale external images so that their object sizes follow a
target dataset's size distribution: `SizeDistribution`, the target's rectified histogram (SPEC §3);
`ScaleMatch`, random per image (SPEC §4); `MonotoneScaleMatch`, deterministic CDF matching, and
`GaussianScaleMatch`, its log-normal-target variant (SPEC §5).

The transforms take and return `(image, target)` like `tinysm.data.datasets.DetectionDataset` (a
uint8 `tv_tensors.Image` 3×H×W, a dict with xyxy `BoundingBoxes`) and do SPEC §4 steps 1–3 only:
flip, normalise and padding are separate transforms. torch is imported only where pixels or torch
seeds are touched, so size statistics and figures load without it.

DataLoader workers: with `rng=None` a transform draws from a `numpy.random.RandomState` seeded from
`torch.initial_seed()` of the calling process, reseeding whenever that seed changes. DataLoader gives
each worker its own seed (`base_seed + worker_id`, new every epoch), so each worker draws its own
stream, reproducible under `torch.manual_seed`. A given `rng` (e.g. `RandomState(seed)`, to follow the
reference draw for draw) is copied as-is into every worker: give each its own with `reseed` in a
`worker_init_fn`: `lambda i: get_worker_info().dataset.transforms.reseed(seed + i)`.
"""
from __future__ import annotations

import os
from bisect import bisect_left
from dataclasses import dataclass
from functools import cached_property
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, Protocol, Sequence

import numpy as np

from tinysm.data.annotations import BoxAnnotation, CocoAnnotations, load_annotations

if TYPE_CHECKING:
    import torch

# SPEC §4 step 2 and §5 compare against bin bounds with this slack, exactly as the reference.
BIN_TOLERANCE = 1e-6
# SPEC §4 step 3: a box survives a resize when its +1-pixel extent is at least this on both axes.
MIN_BOX_EXTENT = 2.0
# Per-box entries of a DetectionDataset target that follow the boxes when some are dropped.
PER_BOX_KEYS = ("labels", "ignore", "iscrowd")

Annotations = str | os.PathLike | CocoAnnotations


class UniformSource(Protocol):
    """What the transforms draw from: numpy's `RandomState` or `Generator`."""

    def uniform(self, low: float = 0.0, high: float = 1.0, size: Any = None) -> Any: ...


# ----------------------------------------------------------------------------- sizes

def _as_annotations(source: Annotations) -> CocoAnnotations:
    return source if isinstance(source, CocoAnnotations) else load_annotations(source)


def counts_for_size(ann: BoxAnnotation) -> bool:
    """Whether a box enters size distributions: neither crowd nor ignore (SPEC §3; uncertain counts)."""
    return not (ann.iscrowd or ann.ignore)


def object_sizes(annotations: Annotations) -> np.ndarray:
    """Float64 sizes √(w·h) of every box that `counts_for_size`, and > 0 (SPEC §3)."""
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
    """SPEC §4 step 1: geometric mean of √((x2−x1+1)(y2−y1+1)) in float32; None without a valid box."""
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


# ----------------------------------------------------------------------------- SPEC §3

@dataclass(frozen=True, eq=False)
class SizeDistribution:
    """A histogram of object sizes: `edges` (K+1 floats, ascending) and `probs` (K floats, sum 1)."""

    edges: np.ndarray
    probs: np.ndarray

    def __post_init__(self) -> None:
        edges = np.asarray(self.edges, dtype=np.float64)
        probs = np.asarray(self.probs, dtype=np.float64)
        if edges.ndim != 1 or probs.ndim != 1 or len(edges) != len(probs) + 1 or len(probs) == 0:
            raise ValueError(f"need K+1 edges for K probs, got {edges.shape} edges and {probs.shape} probs")
        if not np.isclose(probs.sum(), 1.0) or (probs < 0).any():
            raise ValueError(f"probs must be >= 0 and sum to 1, got sum {probs.sum()}")
        if (np.diff(edges) < 0).any():
            raise ValueError("edges must be non-decreasing")
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "probs", probs)

    @classmethod
    def from_sizes(cls, sizes: Sequence[float] | np.ndarray, bins: int = 100,
                   tail_rate: float | None = None, log_bins: bool = False) -> "SizeDistribution":
        """The rectified histogram of SPEC §3; `tail_rate` defaults to 2/bins, 0 means no tail bins."""
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
            if values[lo] == values[hi - 1]:
                # numpy would widen a zero range by ±0.5 and the tail edges would cross it
                raise ValueError(f"the middle {hi - lo} of {n} sizes are all equal ({x[lo]:g}): no spread to bin")
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
        """K equal-probability bins of a log-normal, ln size ~ N(mu, sigma²), cut to its central `coverage`."""
        if sigma <= 0 or not 0 < coverage < 1:
            raise ValueError(f"need sigma > 0 and 0 < coverage < 1, got sigma={sigma}, coverage={coverage}")
        tail = (1 - coverage) / 2
        normal = NormalDist(mu, sigma)
        log_edges = [normal.inv_cdf(tail + coverage * k / bins) for k in range(bins + 1)]
        return cls(np.exp(log_edges), np.full(bins, 1.0 / bins))

    @cached_property
    def cdf(self) -> np.ndarray:
        """C[k] = probs[0] + … + probs[k] (K floats, the last ≈ 1)."""
        return np.cumsum(self.probs)

    def sample(self, rng: UniformSource, n: int) -> np.ndarray:
        """`n` sizes drawn as SPEC §4 step 2: per draw r picks the bin, then u the place in it."""
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


# ----------------------------------------------------------------------------- transforms

@dataclass(frozen=True)
class MatchedBoxes:
    """The outcome of one rescale: new canvas (H, W), factor used, kept boxes and their mask."""

    canvas_size: tuple[int, int]
    scale: float
    boxes: np.ndarray  # float32 xyxy, kept boxes only
    keep: np.ndarray  # bool, one per input box


def _resize_boxes(boxes: np.ndarray, canvas_size: tuple[int, int], scale: float) -> MatchedBoxes:
    """SPEC §4 step 3 for one factor: round-half-to-even size, per-axis box scaling, the size floor."""
    height, width = canvas_size
    # Python's round() is half-to-even, as the reference; at least one pixel per axis.
    new_height, new_width = max(1, round(scale * height)), max(1, round(scale * width))
    ratios = np.array([new_width / width, new_height / height] * 2, dtype=np.float32)
    scaled = boxes * ratios
    extents = scaled[:, 2:] - scaled[:, :2] + 1
    keep = (extents[:, 0] >= MIN_BOX_EXTENT) & (extents[:, 1] >= MIN_BOX_EXTENT)
    return MatchedBoxes((new_height, new_width), scale, scaled[keep], keep)


class SizeMatchTransform:
    """Shared by SM and MSM: a per-image factor from `scale_for`, then SPEC §4 step 3."""

    def __init__(self, scale_range: tuple[float, float], default_scale: float):
        low, high = (float(v) for v in scale_range)
        if not 0 < low < high:
            raise ValueError(f"scale_range must satisfy 0 < low < high, got {tuple(scale_range)}")
        if default_scale <= 0:
            raise ValueError(f"default_scale must be > 0, got {default_scale}")
        self.scale_range = (low, high)
        self.default_scale = float(default_scale)

    def scale_for(self, boxes_xyxy: Any) -> float:
        """The factor c for an image with these boxes."""
        raise NotImplementedError

    def match_boxes(self, boxes_xyxy: Any, canvas_size: tuple[int, int]) -> MatchedBoxes:
        """New canvas size and boxes for an image (H, W) = `canvas_size`, without touching pixels."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
        matched = _resize_boxes(boxes, canvas_size, self.scale_for(boxes))
        if len(boxes) and not matched.keep.any():
            # Every box fell under the floor: the reference falls back to default_scale (SPEC §4 step 3).
            matched = _resize_boxes(boxes, canvas_size, self.default_scale)
        return matched

    def __call__(self, image: torch.Tensor, target: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        """Resize `image` and its target's boxes; boxes under the size floor leave with their labels."""
        import torch
        from torchvision import tv_tensors
        from torchvision.transforms.v2 import InterpolationMode
        from torchvision.transforms.v2 import functional as F

        boxes = target["boxes"]
        matched = self.match_boxes(boxes.as_subclass(torch.Tensor).cpu().numpy(), tuple(image.shape[-2:]))
        resized = F.resize(image, list(matched.canvas_size), interpolation=InterpolationMode.BILINEAR,
                           antialias=True)
        keep = torch.from_numpy(matched.keep)
        out = dict(target)
        for key in PER_BOX_KEYS:
            if key in out:
                out[key] = out[key][keep]
        # Scaled integer boxes would be truncated: they come back as float32.
        dtype = boxes.dtype if boxes.dtype.is_floating_point else torch.float32
        out["boxes"] = tv_tensors.BoundingBoxes(torch.from_numpy(matched.boxes).to(dtype), format="XYXY",
                                                canvas_size=matched.canvas_size, device=boxes.device)
        return resized, out

    def _clamp(self, scale: float) -> float:
        low, high = self.scale_range
        return min(max(scale, low), high)


class ScaleMatch(SizeMatchTransform):
    """SPEC §4: per image, draw a size ŝ from `target` and rescale by c = ŝ / s (s: mean box size).

    Up to `max_tries` draws until low < c < high, else the last c clamped into `scale_range`.
    Images without boxes get `default_scale`. See the module docstring for `rng` and workers.
    """

    def __init__(self, target: SizeDistribution, scale_range: tuple[float, float] = (0.1, 1.0),
                 default_scale: float = 0.25, max_tries: int = 5, rng: UniformSource | None = None):
        super().__init__(scale_range, default_scale)
        if max_tries < 1:
            raise ValueError(f"max_tries must be >= 1, got {max_tries}")
        self.target = target
        self.max_tries = max_tries
        self._rng = rng
        self._rng_seed: int | None = None  # the torch seed an automatic stream was made from

    def reseed(self, seed: int) -> None:
        """Draw from a fresh `RandomState(seed)` from now on (e.g. in a DataLoader `worker_init_fn`)."""
        self._rng, self._rng_seed = np.random.RandomState(seed), None

    @property
    def rng(self) -> UniformSource:
        """The stream draws come from (see the module docstring)."""
        if self._rng is None or self._rng_seed is not None:
            import torch

            seed = torch.initial_seed() % 2**32  # differs per DataLoader worker and per epoch
            if seed != self._rng_seed:
                self._rng, self._rng_seed = np.random.RandomState(seed), seed
        return self._rng

    def scale_for(self, boxes_xyxy: Any) -> float:
        """The factor c of SPEC §4 steps 1–2 (draws 2 uniforms per try; none without boxes)."""
        size = image_mean_size(boxes_xyxy)
        if size is None:
            return self.default_scale
        low, high = self.scale_range
        for _ in range(self.max_tries):
            scale = self.target.draw(self.rng) / size
            if low < scale < high:
                return scale
        return self._clamp(scale)


class MonotoneScaleMatch(SizeMatchTransform):
    """SPEC §5: deterministic c = f(s) / s with f the piecewise-linear map of source onto target CDF.

    `source_sizes`: the external dataset's per-object sizes √(wh), or a COCO-format file (or
    `CocoAnnotations`) to read them from with `object_sizes`.
    """

    log_space = False  # interpolate sizes (MSM) or log sizes (the Gaussian variant)
    sizes_from_file = staticmethod(object_sizes)  # what `source_sizes` given as a file means

    def __init__(self, target: SizeDistribution, source_sizes: np.ndarray | Annotations,
                 scale_range: tuple[float, float] = (0.1, 1.0), default_scale: float = 0.25):
        super().__init__(scale_range, default_scale)
        self.target = target
        self.knots = source_knots(self._read_sizes(source_sizes), target.cdf)
        self._map = BinMap(self.knots, target.edges, self.log_space)

    def _read_sizes(self, source: np.ndarray | Annotations) -> np.ndarray:
        if isinstance(source, (str, os.PathLike, CocoAnnotations)):
            return self.sizes_from_file(source)
        return np.asarray(source, dtype=np.float64)

    def map_size(self, size: float | np.ndarray) -> np.ndarray:
        """f(s) of SPEC §5 (vectorised); beyond the last knot the last bin's line continues."""
        return self._map(size)

    def scale_for(self, boxes_xyxy: Any) -> float:
        """c = f(s) / s clamped into `scale_range`; `default_scale` without boxes."""
        size = image_mean_size(boxes_xyxy)
        if size is None:
            return self.default_scale
        return self._clamp(float(self.map_size(size)) / size)


class GaussianScaleMatch(MonotoneScaleMatch):
    """MSM onto a log-normal target (ln size ~ N(mu, sigma²)), interpolating in log space (SPEC §5).

    The target is `SizeDistribution.log_normal`: `bins` bins of equal probability.

    As in the reference variant, the source sizes read from a COCO file are per-image mean sizes
    (`image_mean_sizes`), the quantity the transform maps. From a mean m and standard deviation d
    of sizes in pixels: sigma² = ln(1 + d²/m²), mu = ln m − sigma²/2.
    """

    log_space = True
    sizes_from_file = staticmethod(image_mean_sizes)

    def __init__(self, mu: float, sigma: float, source_sizes: np.ndarray | Annotations, bins: int = 100,
                 scale_range: tuple[float, float] = (0.1, 1.0), default_scale: float = 0.25):
        super().__init__(SizeDistribution.log_normal(mu, sigma, bins), source_sizes, scale_range, default_scale)


def source_knots(source_sizes: np.ndarray, target_cdf: np.ndarray) -> np.ndarray:
    """SPEC §5: q[0] = y[0], q[k+1] = y[min(int(C[k]·Ns), Ns−1)], and q[K] raised to y[-1]."""
    y = np.sort(np.asarray(source_sizes, dtype=np.float64).ravel())
    y = y[y > 0]
    if len(y) == 0:
        raise ValueError("no positive source sizes to match")
    n = len(y)
    picks = [min(int(c * n), n - 1) for c in target_cdf]  # int() truncates, as the reference
    knots = np.concatenate([[y[0]], y[picks]])
    knots[-1] = max(knots[-1], y[-1])
    return knots


class BinMap:
    """The piecewise-linear map of SPEC §5 from source bins (`knots`) onto target bins (`edges`).

    s falls in the first bin k with s <= knots[k+1] + 1e-6 and maps to
    edges[k] + (s − knots[k]) / (knots[k+1] − knots[k]) · (edges[k+1] − edges[k]), in the reference's
    order of operations; with `log_space` the same on ln s, ln knots, ln edges (the bin is still
    chosen on s, as the reference's Gaussian variant does). Where the reference fails (SPEC §5):
    s above the last knot stays in the last bin (linear extrapolation), and a zero-width bin, stored
    with infinite width, maps to its lower edge.
    """

    def __init__(self, knots: np.ndarray, edges: np.ndarray, log_space: bool = False):
        self._upper = knots[1:] + BIN_TOLERANCE
        x, y = (np.log(knots), np.log(edges)) if log_space else (knots, edges)
        width = np.diff(x)
        self._x0, self._width = x[:-1], np.where(width > 0, width, np.inf)
        self._y0, self._height = y[:-1], np.diff(y)
        self._log_space = log_space

    def __call__(self, s: float | np.ndarray) -> np.ndarray:
        s = np.asarray(s, dtype=np.float64)
        k = np.minimum(np.searchsorted(self._upper, s, side="left"), len(self._upper) - 1)
        x = np.log(s) if self._log_space else s
        f = self._y0[k] + (x - self._x0[k]) / self._width[k] * self._height[k]
        return np.exp(f) if self._log_space else f
