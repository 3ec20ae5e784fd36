"""Sea, beach and sky backgrounds with waves, foam and sun glare, as uint8 RGB canvases.

A background also says where things can stand: `SceneLayout` gives the horizon row (sky above)
and, per column, the row where the beach starts (sea above it, sand below).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

KINDS = ("open_sea", "sea", "beach", "shore")  # aerial water / sky+sea / sky+sea+sand / aerial sea+sand

SEA_COLOURS = ((25, 75, 110), (30, 95, 125), (45, 115, 130), (40, 85, 90), (60, 120, 150))
SAND_COLOURS = ((214, 194, 152), (200, 176, 130), (225, 210, 175), (185, 160, 120))


@dataclass(frozen=True)
class SceneLayout:
    """Where sky, sea and sand are: sky is y < horizon, sand is y >= shore[x], sea in between."""

    width: int
    height: int
    horizon: int
    shore: np.ndarray  # int row per column; == height where there is no beach

    def region(self, x: float, y: float) -> str:
        """'sky', 'sea' or 'sand' at pixel (x, y)."""
        column = int(min(max(x, 0), self.width - 1))
        if y < self.horizon:
            return "sky"
        return "sand" if y >= self.shore[column] else "sea"


def smooth_noise(rng: np.random.Generator, width: int, height: int, cell: int,
                 resample: int = Image.BILINEAR) -> np.ndarray:
    """Zero-mean, unit-scale noise varying over about `cell` pixels (a coarse grid, upsampled)."""
    coarse = rng.standard_normal((height // cell + 2, width // cell + 2)).astype(np.float32)
    image = Image.fromarray(coarse, mode="F").resize((width + 2 * cell, height + 2 * cell), resample)
    return np.asarray(image)[cell:cell + height, cell:cell + width]


def _vertical_gradient(top: np.ndarray, bottom: np.ndarray, rows: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, max(rows, 1), dtype=np.float32)[:, None]
    return top[None, :] * (1 - t) + bottom[None, :] * t


def _sky(rng: np.random.Generator, width: int, rows: int) -> np.ndarray:
    top = np.array([rng.uniform(60, 110), rng.uniform(120, 160), rng.uniform(190, 230)], dtype=np.float32)
    haze = np.array([rng.uniform(190, 225), rng.uniform(205, 230), rng.uniform(220, 240)], dtype=np.float32)
    sky = np.repeat(_vertical_gradient(top, haze, rows)[:, None, :], width, axis=1)
    # Bicubic: bilinear noise thresholded into clouds shows the grid as straight streaks.
    clouds = np.clip(smooth_noise(rng, width, rows, 90, Image.BICUBIC) - rng.uniform(0.2, 1.0), 0, 1)[..., None]
    return sky + clouds * (np.float32(245) - sky) * 0.8


def _sea(rng: np.random.Generator, width: int, height: int, horizon: int) -> np.ndarray:
    base = np.asarray(SEA_COLOURS[rng.integers(len(SEA_COLOURS))], dtype=np.float32) + rng.normal(0, 6, 3).astype(np.float32)
    rows = height - horizon
    depth = np.linspace(0.0, 1.0, max(rows, 1), dtype=np.float32)  # 0 at the horizon, 1 at the bottom
    # Waves: horizontal crests whose spacing grows towards the camera (perspective), bent by one
    # noise field; a second, broader one ("swell") groups them, brightens patches and says where
    # the biggest crests break into foam.
    wavelength = 3.0 + rng.uniform(12, 25) * depth
    phase = np.cumsum(2 * np.pi / wavelength)[:, None] + 3.0 * smooth_noise(rng, width, rows, 30)
    swell = smooth_noise(rng, width, rows, 60)
    waves = np.sin(phase) * np.clip(0.6 + 0.6 * swell, 0, 1)
    # Far waves blur into texture: their contrast fades towards the horizon.
    amplitude = rng.uniform(6, 12) * (0.3 + 0.7 * depth[:, None])
    sea = base * (0.8 + 0.25 * depth[:, None, None]) + (amplitude * waves + 6 * swell)[..., None]
    breaking = np.clip((waves - 0.85) * 6.0, 0, 1) * np.clip(swell - 0.9, 0, 1)
    foam = breaking > 0  # a few percent of the pixels: blend only those
    sea[foam] += breaking[foam][:, None] * (np.float32(240) - sea[foam])
    # Sun glare: sparse bright specks on crests inside a column below the sun.
    sun_x = rng.uniform(0.1, 0.9) * width
    column = np.exp(-((np.arange(width, dtype=np.float32) - sun_x) / (rng.uniform(0.03, 0.1) * width)) ** 2)
    specks = (rng.random((rows, width), dtype=np.float32) < 0.03 * column[None, :]) & (waves > 0.5)
    sea[specks] = np.float32(250)
    return sea


def _sand(rng: np.random.Generator, width: int, height: int, shore: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    base = np.asarray(SAND_COLOURS[rng.integers(len(SAND_COLOURS))], dtype=np.float32)
    sand = np.broadcast_to(base, (height, width, 3)) + 10 * smooth_noise(rng, width, height, 80)[..., None]
    rows = np.arange(height, dtype=np.float32)[:, None]
    beyond = rows - shore[None, :].astype(np.float32)  # rows past the waterline
    wet = np.exp(-np.clip(beyond, 0, None) / rng.uniform(15, 60))[..., None]
    sand = sand * (1 - 0.25 * wet)
    foam = np.clip(1 - np.abs(beyond - 2) / 4, 0, 1) * np.clip(0.7 + 0.4 * smooth_noise(rng, width, height, 20), 0, 1)
    return sand, foam


def _shoreline(rng: np.random.Generator, width: int, height: int, top: int) -> np.ndarray:
    """Row where sand starts, per column: a slanted, gently curving line between `top` and the bottom."""
    x = np.linspace(0, 1, width)
    start, end = rng.uniform(0.45, 0.85, 2)
    line = start + (end - start) * x + 0.04 * np.sin(2 * np.pi * (x * rng.uniform(0.5, 2) + rng.random()))
    return np.clip(top + line * (height - top), top, height).astype(np.int64)


def _upsample(canvas: np.ndarray, width: int, height: int) -> np.ndarray:
    small = Image.fromarray(np.clip(canvas + 0.5, 0, 255).astype(np.uint8), mode="RGB")
    return np.array(small.resize((width, height), Image.BILINEAR))  # a writable copy


def background(rng: np.random.Generator, width: int, height: int, kind: str,
               detail: int = 2) -> tuple[np.ndarray, SceneLayout]:
    """An H×W×3 uint8 canvas of `kind` (one of KINDS) and its layout.

    The scenery is rendered at 1/`detail` resolution and upsampled: it is smooth anyway, and
    full-resolution scenery would be most of the generator's time.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown background kind {kind!r}; expected one of {KINDS}")
    horizon = int(rng.uniform(0.12, 0.4) * height) if kind in ("sea", "beach") else 0
    shore = _shoreline(rng, width, height, horizon) if kind in ("beach", "shore") else np.full(width, height)
    w, h = -(-width // detail), -(-height // detail)
    small_horizon, small_shore = horizon // detail, shore[::detail] // detail
    canvas = np.empty((h, w, 3), dtype=np.float32)
    if small_horizon > 0:
        canvas[:small_horizon] = _sky(rng, w, small_horizon)
    canvas[small_horizon:] = _sea(rng, w, h, small_horizon)
    if kind in ("beach", "shore"):
        sand, foam = _sand(rng, w, h, small_shore)
        is_sand = np.arange(h)[:, None] >= small_shore[None, :]
        canvas = np.where(is_sand[..., None], sand, canvas)
        canvas += foam[..., None] * (np.float32(245) - canvas) * 0.9
    # Grain, so that flat regions are not flat: sensor noise as a video codec leaves it, a few px wide.
    canvas += rng.standard_normal((h, w), dtype=np.float32)[..., None] * np.float32(rng.uniform(2, 5))
    return _upsample(canvas, width, height), SceneLayout(width, height, horizon, shore)
