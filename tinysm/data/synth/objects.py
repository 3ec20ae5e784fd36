"""Things that are not people: boats, buoys, birds, umbrellas, balls and cars.

In TinyPerson scenes they are distractors (a red buoy is the size and colour of a swimmer's head);
in COCO-like scenes they are labelled objects. Each drawing is built in units of its own box
(about 1×`aspect`), scaled so the box has √(w·h) ≈ `size` and centred on `centre`.
"""
from __future__ import annotations

import math

import numpy as np

from tinysm.data.synth.figures import Figure
from tinysm.data.synth.raster import Capsule, Colour, Ellipse, Part, Polygon, union_bounds

BRIGHT: tuple[Colour, ...] = ((230, 40, 30), (250, 140, 20), (250, 215, 40), (245, 245, 240), (30, 80, 200), (30, 160, 80))
HULLS: tuple[Colour, ...] = ((245, 245, 245), (200, 40, 35), (30, 60, 140), (150, 100, 60), (60, 60, 65))


def _pick(rng: np.random.Generator, palette: tuple[Colour, ...]) -> Colour:
    return palette[rng.integers(len(palette))]


class _Pen:
    """Maps drawing units to pixels: x·k + cx, y·k + cy, with k chosen from the requested size."""

    def __init__(self, centre: tuple[float, float], size: float, aspect: float):
        # A drawing spanning aspect × 1 units has √(w·h) = k·√aspect px.
        self.k = size / math.sqrt(aspect)
        self.cx, self.cy = centre

    def xy(self, x: float, y: float) -> tuple[float, float]:
        return self.cx + x * self.k, self.cy + y * self.k

    def capsule(self, x0: float, y0: float, x1: float, y1: float, radius: float) -> Capsule:
        return Capsule(*self.xy(x0, y0), *self.xy(x1, y1), max(0.4, radius * self.k))

    def ellipse(self, x: float, y: float, rx: float, ry: float, angle: float = 0.0) -> Ellipse:
        return Ellipse(*self.xy(x, y), max(0.5, rx * self.k), max(0.5, ry * self.k), angle)

    def polygon(self, *points: tuple[float, float]) -> Polygon:
        return Polygon(tuple(self.xy(x, y) for x, y in points))


def _figure(parts: list[Part]) -> Figure:
    return Figure(tuple(parts), union_bounds(parts))


def buoy(rng: np.random.Generator, centre: tuple[float, float], size: float) -> Figure:
    """A round float, bright like a swimmer's cap, with a darker band."""
    pen = _Pen(centre, size, 1.0)
    colour = _pick(rng, BRIGHT[:4])
    band = tuple(0.55 * c for c in colour)
    return _figure([Part(pen.ellipse(0, 0, 0.5, 0.5), colour), Part(pen.ellipse(0, 0.18, 0.45, 0.12), band)])


def boat(rng: np.random.Generator, centre: tuple[float, float], size: float) -> Figure:
    """A motor boat (hull and cabin) or a sailing boat (hull, mast, sail), side view."""
    hull = _pick(rng, HULLS)
    direction = 1.0 if rng.random() < 0.5 else -1.0
    if rng.random() < 0.6:
        pen = _Pen(centre, size, 2.6)
        parts = [Part(pen.polygon((-1.3, 0.05), (1.3 * direction, 0.05), (1.0 * direction, 0.5), (-1.0, 0.5)), hull),
                 Part(pen.polygon((-0.5 * direction, -0.5), (0.3 * direction, -0.5), (0.5 * direction, 0.05),
                                  (-0.6 * direction, 0.05)), (235, 235, 230)),
                 Part(pen.polygon((-0.3 * direction, -0.35), (0.25 * direction, -0.35), (0.3 * direction, -0.15),
                                  (-0.3 * direction, -0.15)), (40, 60, 80))]
    else:
        pen = _Pen(centre, size, 0.9)
        sail = (250, 250, 245) if rng.random() < 0.7 else _pick(rng, BRIGHT)
        parts = [Part(pen.polygon((-0.45, 0.3), (0.45, 0.3), (0.33, 0.5), (-0.33, 0.5)), hull),
                 Part(pen.capsule(0, -0.5, 0, 0.3, 0.015), (90, 80, 70)),
                 Part(pen.polygon((0.02 * direction, -0.45), (0.02 * direction, 0.25), (0.4 * direction, 0.25)), sail)]
    return _figure(parts)


def bird(rng: np.random.Generator, centre: tuple[float, float], size: float) -> Figure:
    """A gull: flying (an M of two bent wings) or standing (body, head, beak, legs)."""
    colour = (250, 250, 250) if rng.random() < 0.5 else (55, 55, 60)
    if rng.random() < 0.7:
        pen = _Pen(centre, size, 3.0)
        lift = rng.uniform(-0.4, 0.1)
        parts = [Part(pen.capsule(0, 0.2, -0.8, lift, 0.07), colour), Part(pen.capsule(-0.8, lift, -1.45, 0.35, 0.05), colour),
                 Part(pen.capsule(0, 0.2, 0.8, lift, 0.07), colour), Part(pen.capsule(0.8, lift, 1.45, 0.35, 0.05), colour),
                 Part(pen.ellipse(0, 0.25, 0.22, 0.12), colour)]
    else:
        pen = _Pen(centre, size, 1.1)
        parts = [Part(pen.capsule(-0.1, 0.2, -0.05, 0.5, 0.025), (230, 150, 40)),
                 Part(pen.capsule(0.1, 0.2, 0.05, 0.5, 0.025), (230, 150, 40)),
                 Part(pen.ellipse(0, 0.0, 0.45, 0.25, rng.uniform(-0.3, 0.3)), colour),
                 Part(pen.ellipse(0.32, -0.32, 0.14, 0.13), colour),
                 Part(pen.polygon((0.44, -0.36), (0.55, -0.3), (0.44, -0.27)), (240, 170, 30))]
    return _figure(parts)


def umbrella(rng: np.random.Generator, centre: tuple[float, float], size: float) -> Figure:
    """A striped beach umbrella: a half-disc canopy of coloured sectors on a pole."""
    pen = _Pen(centre, size, 1.4)
    colours = (_pick(rng, BRIGHT), (245, 245, 240))
    tilt = rng.uniform(-0.3, 0.3)
    top = (0.0, -0.1)
    parts = [Part(pen.capsule(top[0], top[1], -tilt * 0.5, 0.5, 0.02), (200, 200, 200))]
    sectors = 6
    for i in range(sectors):
        a0 = math.pi + tilt + math.pi * i / sectors
        a1 = math.pi + tilt + math.pi * (i + 1) / sectors
        arc = [(top[0] + 0.7 * math.cos(a), top[1] + 0.45 * math.sin(a)) for a in np.linspace(a0, a1, 4)]
        parts.append(Part(pen.polygon(top, *arc), colours[i % 2]))
    return _figure(parts)


def ball(rng: np.random.Generator, centre: tuple[float, float], size: float) -> Figure:
    """A beach ball: a white disc with three coloured sectors."""
    pen = _Pen(centre, size, 1.0)
    parts = [Part(pen.ellipse(0, 0, 0.5, 0.5), (245, 245, 240))]
    spin = rng.uniform(0, 2 * math.pi)
    for i in range(3):
        a0 = spin + 2 * math.pi * i / 3
        arc = [(0.47 * math.cos(a), 0.47 * math.sin(a)) for a in np.linspace(a0, a0 + math.pi / 3, 4)]
        parts.append(Part(pen.polygon((0.0, 0.0), *arc), BRIGHT[(i * 2) % len(BRIGHT)]))
    return _figure(parts)


def car(rng: np.random.Generator, centre: tuple[float, float], size: float) -> Figure:
    """A car in side view: body, cabin with windows, two wheels."""
    pen = _Pen(centre, size, 2.2)
    paint_colour = _pick(rng, BRIGHT + HULLS)
    parts = [Part(pen.polygon((-1.1, -0.05), (1.1, -0.05), (1.1, 0.3), (-1.1, 0.3)), paint_colour),
             Part(pen.polygon((-0.6, -0.5), (0.45, -0.5), (0.75, -0.05), (-0.85, -0.05)), paint_colour),
             Part(pen.polygon((-0.5, -0.42), (0.4, -0.42), (0.6, -0.1), (-0.7, -0.1)), (60, 80, 100))]
    for x in (-0.65, 0.65):
        parts += [Part(pen.ellipse(x, 0.28, 0.22, 0.22), (25, 25, 25)), Part(pen.ellipse(x, 0.28, 0.09, 0.09), (170, 170, 170))]
    return _figure(parts)
