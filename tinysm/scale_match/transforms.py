"""The size-matching transforms: `ScaleMatch`, random per image (reference §4); `MonotoneScaleMatch`,
deterministic CDF matching, and `GaussianScaleMatch`, its log-normal-target variant (reference §5).

The transforms take and return `(image, target)` like `tinysm.data.datasets.DetectionDataset` (a
uint8 `tv_tensors.Image` 3×H×W, a dict with xyxy `BoundingBoxes`) and do reference §4 steps 1–3 only:
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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tinysm.data.annotations import CocoAnnotations
from tinysm.scale_match.sizes import BIN_TOLERANCE, Annotations, SizeDistribution, UniformSource, image_mean_size, image_mean_sizes, object_sizes

if TYPE_CHECKING:
    import torch

# reference §4 step 3: a box survives a resize when its +1-pixel extent is at least this on both axes.
MIN_BOX_EXTENT = 2.0
# Per-box entries of a DetectionDataset target that follow the boxes when some are dropped.
PER_BOX_KEYS = ("labels", "ignore", "iscrowd")


@dataclass(frozen=True)
class MatchedBoxes:
    """The outcome of one rescale: new canvas (H, W), factor used, kept boxes and their mask."""

    canvas_size: tuple[int, int]
    scale: float
    boxes: np.ndarray  # float32 xyxy, kept boxes only
    keep: np.ndarray  # bool, one per input box


# How pixels and boxes follow the factor chosen by reference §4 step 3: "reference" is the paper's code
# (mmcv's keep-ratio size rule, bilinear without antialiasing, boxes clipped: reference §4 "Pixels");
# "antialiased" keeps step 3's size, filters before shrinking and does not clip.
RESIZE_RULES = ("reference", "antialiased")


def reference_rescale_size(canvas_size: tuple[int, int], requested: tuple[int, int]) -> tuple[int, int]:
    """mmcv's keep-ratio rescale of an (H, W) image towards `requested` (H', W'): one factor
    f = min(max(H', W') / max(H, W), min(H', W') / min(H, W)), output (int(H·f + 0.5), int(W·f + 0.5))."""
    height, width = canvas_size
    factor = min(max(requested) / max(height, width), min(requested) / min(height, width))
    return int(height * factor + 0.5), int(width * factor + 0.5)


def _floor_boxes(scaled: np.ndarray, canvas_size: tuple[int, int], scale: float) -> MatchedBoxes:
    """reference §4 step 3's size floor: a box stays when its +1-pixel extent is ≥ 2 on both axes."""
    extents = scaled[:, 2:] - scaled[:, :2] + 1
    keep = (extents[:, 0] >= MIN_BOX_EXTENT) & (extents[:, 1] >= MIN_BOX_EXTENT)
    return MatchedBoxes(canvas_size, scale, scaled[keep], keep)


def _axis_ratios(canvas_size: tuple[int, int], new_size: tuple[int, int]) -> np.ndarray:
    """float32 (x, y, x, y) factors that take boxes from `canvas_size` to `new_size` (both (H, W))."""
    return np.array([new_size[1] / canvas_size[1], new_size[0] / canvas_size[0]] * 2, dtype=np.float32)


def _resize_boxes(boxes: np.ndarray, canvas_size: tuple[int, int], scale: float) -> MatchedBoxes:
    """reference §4 step 3 for one factor: round-half-to-even size, per-axis box scaling, the size floor."""
    height, width = canvas_size
    # Python's round() is half-to-even, as the reference; at least one pixel per axis.
    new_size = max(1, round(scale * height)), max(1, round(scale * width))
    return _floor_boxes(boxes * _axis_ratios(canvas_size, new_size), new_size, scale)


def _reference_rescale(boxes: np.ndarray, canvas_size: tuple[int, int], step3: MatchedBoxes) -> MatchedBoxes:
    """reference §4 "Pixels": step 3's size goes through mmcv's keep-ratio rule, which may move it by
    a pixel; the original boxes are scaled per axis to that size, clipped to it, then floored."""
    new_size = reference_rescale_size(canvas_size, step3.canvas_size)
    scaled = boxes * _axis_ratios(canvas_size, new_size)
    np.clip(scaled[:, 0::2], 0, new_size[1], out=scaled[:, 0::2])
    np.clip(scaled[:, 1::2], 0, new_size[0], out=scaled[:, 1::2])
    return _floor_boxes(scaled, new_size, step3.scale)


class SizeMatchTransform:
    """Shared by SM and MSM: a per-image factor from `scale_for`, then reference §4 step 3."""

    def __init__(self, scale_range: tuple[float, float], default_scale: float, resize: str = "reference"):
        if resize not in RESIZE_RULES:
            raise ValueError(f"resize must be one of {RESIZE_RULES}, got {resize!r}")
        self.resize = resize
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
            # Every box fell under the floor: the reference falls back to default_scale (reference §4 step 3).
            matched = _resize_boxes(boxes, canvas_size, self.default_scale)
        return _reference_rescale(boxes, canvas_size, matched) if self.resize == "reference" else matched

    def __call__(self, image: torch.Tensor, target: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        """Resize `image` and its target's boxes; boxes under the size floor leave with their labels."""
        import torch
        from torchvision import tv_tensors
        from torchvision.transforms.v2 import InterpolationMode
        from torchvision.transforms.v2 import functional as F

        boxes = target["boxes"]
        matched = self.match_boxes(boxes.as_subclass(torch.Tensor).cpu().numpy(), tuple(image.shape[-2:]))
        resized = F.resize(image, list(matched.canvas_size), interpolation=InterpolationMode.BILINEAR,
                           antialias=self.resize == "antialiased")
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
    """reference §4: per image, draw a size ŝ from `target` and rescale by c = ŝ / s (s: mean box size).

    Up to `max_tries` draws until low < c < high, else the last c clamped into `scale_range`.
    Images without boxes get `default_scale`. See the module docstring for `rng` and workers.
    """

    def __init__(self, target: SizeDistribution, scale_range: tuple[float, float] = (0.1, 1.0),
                 default_scale: float = 0.25, max_tries: int = 5, rng: UniformSource | None = None,
                 resize: str = "reference"):
        super().__init__(scale_range, default_scale, resize)
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
        """The factor c of reference §4 steps 1–2 (draws 2 uniforms per try; none without boxes)."""
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
    """reference §5: deterministic c = f(s) / s with f the piecewise-linear map of source onto target CDF.

    `source_sizes`: the external dataset's per-object sizes √(wh), or a COCO-format file (or
    `CocoAnnotations`) to read them from with `object_sizes`.
    """

    log_space = False  # interpolate sizes (MSM) or log sizes (the Gaussian variant)
    sizes_from_file = staticmethod(object_sizes)  # what `source_sizes` given as a file means

    def __init__(self, target: SizeDistribution, source_sizes: np.ndarray | Annotations,
                 scale_range: tuple[float, float] = (0.1, 1.0), default_scale: float = 0.25,
                 resize: str = "reference"):
        super().__init__(scale_range, default_scale, resize)
        self.target = target
        self.knots = source_knots(self._read_sizes(source_sizes), target.cdf)
        self._map = BinMap(self.knots, target.edges, self.log_space)

    def _read_sizes(self, source: np.ndarray | Annotations) -> np.ndarray:
        if isinstance(source, (str, os.PathLike, CocoAnnotations)):
            return self.sizes_from_file(source)
        return np.asarray(source, dtype=np.float64)

    def map_size(self, size: float | np.ndarray) -> np.ndarray:
        """f(s) of reference §5 (vectorised); beyond the last knot the last bin's line continues."""
        return self._map(size)

    def scale_for(self, boxes_xyxy: Any) -> float:
        """c = f(s) / s clamped into `scale_range`; `default_scale` without boxes."""
        size = image_mean_size(boxes_xyxy)
        if size is None:
            return self.default_scale
        return self._clamp(float(self.map_size(size)) / size)


class GaussianScaleMatch(MonotoneScaleMatch):
    """MSM onto a log-normal target (ln size ~ N(mu, sigma²)), interpolating in log space (reference §5).

    The target is `SizeDistribution.log_normal`: `bins` bins of equal probability.

    As in the reference variant, the source sizes read from a COCO file are per-image mean sizes
    (`image_mean_sizes`), the quantity the transform maps. From a mean m and standard deviation d
    of sizes in pixels: sigma² = ln(1 + d²/m²), mu = ln m − sigma²/2.
    """

    log_space = True
    sizes_from_file = staticmethod(image_mean_sizes)

    def __init__(self, mu: float, sigma: float, source_sizes: np.ndarray | Annotations, bins: int = 100,
                 scale_range: tuple[float, float] = (0.1, 1.0), default_scale: float = 0.25,
                 resize: str = "reference"):
        super().__init__(SizeDistribution.log_normal(mu, sigma, bins), source_sizes, scale_range, default_scale,
                         resize)


def source_knots(source_sizes: np.ndarray, target_cdf: np.ndarray) -> np.ndarray:
    """reference §5: q[0] = y[0], q[k+1] = y[min(int(C[k]·Ns), Ns−1)], and q[K] raised to y[-1]."""
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
    """The piecewise-linear map of reference §5 from source bins (`knots`) onto target bins (`edges`).

    s falls in the first bin k with s <= knots[k+1] + 1e-6 and maps to
    edges[k] + (s − knots[k]) / (knots[k+1] − knots[k]) · (edges[k+1] − edges[k]), in the reference's
    order of operations; with `log_space` the same on ln s, ln knots, ln edges (the bin is still
    chosen on s, as the reference's Gaussian variant does). Where the reference fails (reference §5):
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
