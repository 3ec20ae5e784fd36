"""Anti-aliased shapes painted onto a uint8 RGB canvas: the drawing primitives of the generator.

Each shape knows its exact bounding box and a signed distance (negative inside, in pixels), so
coverage = clip(0.5 − distance / softness, 0, 1) gives anti-aliasing without supersampling: an
edge ramp `softness` pixels wide. That matters at TinyPerson scale: a 4-pixel person is mostly
edge pixels. A softness above 1 doubles as the camera's lens blur, at no cost.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels
Colour = tuple[float, float, float]


class Shape(Protocol):
    def bounds(self) -> Box: ...
    def distance(self, xx: np.ndarray, yy: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Capsule:
    """A segment p0–p1 thickened by `radius`: limbs, torsos, masts."""

    x0: float
    y0: float
    x1: float
    y1: float
    radius: float

    def bounds(self) -> Box:
        r = self.radius
        return (min(self.x0, self.x1) - r, min(self.y0, self.y1) - r,
                max(self.x0, self.x1) + r, max(self.y0, self.y1) + r)

    def distance(self, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
        dx, dy = self.x1 - self.x0, self.y1 - self.y0
        length2 = dx * dx + dy * dy
        px, py = xx - self.x0, yy - self.y0
        t = np.clip((px * dx + py * dy) / length2, 0.0, 1.0) if length2 > 0 else 0.0
        return np.hypot(px - t * dx, py - t * dy) - self.radius


@dataclass(frozen=True)
class Ellipse:
    """An ellipse with semi-axes (rx, ry) rotated by `angle` radians: heads, buoys, bird bodies."""

    cx: float
    cy: float
    rx: float
    ry: float
    angle: float = 0.0

    def bounds(self) -> Box:
        c, s = math.cos(self.angle), math.sin(self.angle)
        half_w = math.hypot(self.rx * c, self.ry * s)
        half_h = math.hypot(self.rx * s, self.ry * c)
        return (self.cx - half_w, self.cy - half_h, self.cx + half_w, self.cy + half_h)

    def distance(self, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
        c, s = math.cos(self.angle), math.sin(self.angle)
        u = ((xx - self.cx) * c + (yy - self.cy) * s) / self.rx
        v = (-(xx - self.cx) * s + (yy - self.cy) * c) / self.ry
        # Scaled radial distance: exact on the axes, close enough elsewhere for a 1-pixel ramp.
        return (np.hypot(u, v) - 1.0) * min(self.rx, self.ry)


@dataclass(frozen=True)
class Polygon:
    """A convex polygon (vertices in either winding): hulls, sails, canopies, car bodies."""

    points: tuple[tuple[float, float], ...]

    def bounds(self) -> Box:
        xs, ys = zip(*self.points)
        return (min(xs), min(ys), max(xs), max(ys))

    def distance(self, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
        pts = self.points
        area2 = sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(pts, pts[1:] + pts[:1]))
        sign = 1.0 if area2 > 0 else -1.0
        out = np.full(np.broadcast(xx, yy).shape, -np.inf)
        # Max of the signed distances to the edge lines: exact inside, a slight underestimate
        # just outside a corner, which only softens the corner's anti-aliasing.
        for (ax, ay), (bx, by) in zip(pts, pts[1:] + pts[:1]):
            ex, ey = bx - ax, by - ay
            norm = math.hypot(ex, ey) or 1.0
            out = np.maximum(out, sign * ((xx - ax) * ey - (yy - ay) * ex) / norm)
        return out


@dataclass(frozen=True)
class Part:
    """One coloured shape of a drawing; `alpha` < 1 for translucent things (glare, foam)."""

    shape: Shape
    colour: Colour
    alpha: float = 1.0


def _window(bounds: Box, margin: int, limits: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """Whole-pixel columns/rows [c1, c2) × [r1, r2) around `bounds` plus `margin`, inside `limits`."""
    x1, y1, x2, y2 = bounds
    return (max(limits[0], math.floor(x1) - margin), max(limits[1], math.floor(y1) - margin),
            min(limits[2], math.ceil(x2) + margin), min(limits[3], math.ceil(y2) + margin))


def paint_all(canvas: np.ndarray, parts: Sequence[Part], softness: float = 1.0) -> None:
    """Blend `parts` in order (later ones cover earlier ones) into the H×W×3 uint8 `canvas` in place.

    Only the parts' common patch goes through float, once: a float copy of a whole 1920×1080
    frame costs more than painting every person on it.
    """
    if not parts:
        return
    margin = math.ceil(softness / 2) + 1
    c1, r1, c2, r2 = _window(union_bounds(parts), margin, (0, 0, canvas.shape[1], canvas.shape[0]))
    if c2 <= c1 or r2 <= r1:
        return
    values = canvas[r1:r2, c1:c2].astype(np.float32)
    for part in parts:
        a1, b1, a2, b2 = _window(part.shape.bounds(), margin, (c1, r1, c2, r2))
        if a2 <= a1 or b2 <= b1:
            continue
        # Pixel centres sit at integer + 0.5, so a shape from x=10 to x=12 covers pixels 10 and 11.
        xx = np.arange(a1, a2, dtype=np.float32)[None, :] + 0.5
        yy = np.arange(b1, b2, dtype=np.float32)[:, None] + 0.5
        coverage = np.clip(0.5 - part.shape.distance(xx, yy) / softness, 0.0, 1.0) * part.alpha
        window = values[b1 - r1:b2 - r1, a1 - c1:a2 - c1]
        window += coverage[..., None].astype(np.float32) * (np.asarray(part.colour, dtype=np.float32) - window)
    canvas[r1:r2, c1:c2] = np.clip(values + 0.5, 0, 255).astype(np.uint8)


def paint(canvas: np.ndarray, part: Part, softness: float = 1.0) -> None:
    """Blend one part into the uint8 `canvas` in place (see `paint_all`)."""
    paint_all(canvas, [part], softness)


def union_bounds(parts: Sequence[Part]) -> Box:
    """The tight box around every part: what an annotator would draw around the visible figure."""
    boxes = np.array([p.shape.bounds() for p in parts])
    return (float(boxes[:, 0].min()), float(boxes[:, 1].min()),
            float(boxes[:, 2].max()), float(boxes[:, 3].max()))
