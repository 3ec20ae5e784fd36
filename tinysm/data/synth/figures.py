"""Small articulated people: head, torso, arms and legs as capsules, in five poses.

A figure is built in body units (a standing person is 1 tall, head top at y=0, feet at y=1),
then scaled so that its visible box has the requested √(w·h) (reference §1.3's size measure) and
moved so that the box is centred on the requested point. Swimmers and waders are cut at a
waterline: what is under water is not drawn and not boxed, as an annotator would box it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tinysm.data.synth.raster import Box, Capsule, Colour, Ellipse, Part, union_bounds

POSES = ("standing", "walking", "lying", "swimming", "wading")
LAND_POSES = ("standing", "walking", "lying")
WATER_POSES = ("swimming", "wading")

SKIN_TONES: tuple[Colour, ...] = (
    (255, 219, 186), (241, 194, 150), (224, 172, 120), (198, 134, 86), (160, 100, 60), (110, 70, 45))
HAIR_COLOURS: tuple[Colour, ...] = ((25, 20, 18), (70, 45, 30), (120, 85, 50), (215, 180, 110), (150, 150, 150))
# Swimwear and beach clothes: saturated, so even a 3-pixel person differs from sand and sea.
CLOTHING_COLOURS: tuple[Colour, ...] = (
    (220, 30, 40), (30, 70, 200), (250, 210, 30), (30, 160, 70), (20, 20, 25), (245, 245, 245),
    (250, 120, 20), (240, 90, 160), (20, 30, 90), (130, 50, 170), (0, 170, 190))

MIN_RADIUS = 0.4  # pixels: thinner limbs would vanish into anti-aliasing at TinyPerson scale
HEAD_RADIUS = 0.072
LIMB_RADIUS = {"arm": 0.032, "leg": 0.046, "torso": 0.088}


@dataclass(frozen=True)
class Figure:
    """Parts to paint, in order, and the box of the visible body (`decor` is painted, not boxed)."""

    parts: tuple[Part, ...]
    box: Box
    decor: tuple[Part, ...] = ()

    @property
    def size(self) -> float:
        """√(w·h) of the box (reference §1.3)."""
        x1, y1, x2, y2 = self.box
        return math.sqrt(max(x2 - x1, 0.0) * max(y2 - y1, 0.0))


@dataclass(frozen=True)
class Outfit:
    skin: Colour
    hair: Colour
    top: Colour
    bottom: Colour


def random_outfit(rng: np.random.Generator) -> Outfit:
    """Skin, hair and clothing colours with a little per-person jitter."""
    def pick(palette: tuple[Colour, ...]) -> Colour:
        base = np.asarray(palette[rng.integers(len(palette))], dtype=float)
        return tuple(np.clip(base + rng.normal(0, 8, 3), 0, 255))

    skin = pick(SKIN_TONES)
    bottom = pick(CLOTHING_COLOURS)
    top = skin if rng.random() < 0.35 else pick(CLOTHING_COLOURS)  # bare-chested swimmers
    return Outfit(skin, pick(HAIR_COLOURS), top, bottom)


def _limb(start: np.ndarray, angles: tuple[float, float], lengths: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Joint positions of a two-segment limb; angles in radians from straight down towards +x."""
    middle = start + lengths[0] * np.array([math.sin(angles[0]), math.cos(angles[0])])
    end = middle + lengths[1] * np.array([math.sin(angles[1]), math.cos(angles[1])])
    return middle, end


def _skeleton(rng: np.random.Generator, pose: str) -> dict[str, np.ndarray]:
    """Joint positions in body units for `pose` (before lying rotation or waterline cut)."""
    deg = math.radians
    joints = {
        "head": np.array([0.0, 0.075]), "neck": np.array([0.0, 0.2]), "pelvis": np.array([0.0, 0.48]),
        "shoulder_l": np.array([-0.095, 0.2]), "shoulder_r": np.array([0.095, 0.2]),
        "hip_l": np.array([-0.05, 0.5]), "hip_r": np.array([0.05, 0.5]),
    }
    if pose == "swimming":  # strokes: arms anywhere from down to overhead
        arm = [deg(rng.uniform(20, 170)), deg(rng.uniform(20, 170))]
    elif rng.random() < 0.15:  # waving
        arm = [deg(rng.uniform(5, 25)), deg(rng.uniform(130, 170))]
    else:
        arm = [deg(rng.uniform(5, 30)), deg(rng.uniform(5, 30))]
    stride = deg(rng.uniform(15, 28)) if pose == "walking" else deg(rng.uniform(0, 6))
    legs = [(-stride, -stride + deg(rng.uniform(-5, 5))), (stride, stride - deg(rng.uniform(5, 20)))]
    for side, sign, arm_angle, leg in (("l", -1, arm[0], legs[0]), ("r", 1, arm[1], legs[1])):
        bend = deg(rng.uniform(0, 25))
        joints[f"elbow_{side}"], joints[f"hand_{side}"] = _limb(
            joints[f"shoulder_{side}"], (sign * arm_angle, sign * (arm_angle + bend)), (0.16, 0.15))
        joints[f"knee_{side}"], joints[f"foot_{side}"] = _limb(joints[f"hip_{side}"], leg, (0.25, 0.24))
    return joints


# (joint, joint, limb kind, outfit colour), painted in this order: legs behind the torso, arms in front.
_SEGMENTS = (
    ("hip_l", "knee_l", "leg", "bottom"), ("knee_l", "foot_l", "leg", "skin"),
    ("hip_r", "knee_r", "leg", "bottom"), ("knee_r", "foot_r", "leg", "skin"),
    ("neck", "pelvis", "torso", "top"), ("hip_l", "hip_r", "leg", "bottom"),
    ("shoulder_l", "elbow_l", "arm", "skin"), ("elbow_l", "hand_l", "arm", "skin"),
    ("shoulder_r", "elbow_r", "arm", "skin"), ("elbow_r", "hand_r", "arm", "skin"),
)


def _cut_at_waterline(a: np.ndarray, b: np.ndarray, water: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The part of segment a–b above `water` (smaller y), or None when it is all under water."""
    if a[1] > water and b[1] > water:
        return None
    if a[1] <= water and b[1] <= water:
        return a, b
    t = (water - a[1]) / (b[1] - a[1])
    cut = a + t * (b - a)
    return (a, cut) if a[1] <= water else (cut, b)


def _visible_segments(joints: dict[str, np.ndarray], water: float | None) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """(S×2×2 segment ends in body units, [(limb kind, outfit colour)]) of what is above the water."""
    ends, styles = [], []
    for a, b, kind, colour in _SEGMENTS:
        segment = (joints[a], joints[b]) if water is None else _cut_at_waterline(joints[a], joints[b], water)
        if segment is not None:
            ends.append(segment)
            styles.append((kind, colour))
    return np.array(ends, dtype=float).reshape(-1, 2, 2), styles


def _bounds(ends: np.ndarray, radii: np.ndarray, head: np.ndarray, head_radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Corners (x1, y1), (x2, y2) of the box around the capsules (ends ± radius) and the head ellipse."""
    lo = np.minimum((ends.min(axis=1) - radii[:, None]).min(axis=0), head - [0.88 * head_radius, head_radius])
    hi = np.maximum((ends.max(axis=1) + radii[:, None]).max(axis=0), head + [0.88 * head_radius, head_radius])
    return lo, hi


def person(rng: np.random.Generator, centre: tuple[float, float], size: float, pose: str,
           outfit: Outfit | None = None, alpha: float = 1.0) -> Figure:
    """An articulated person in `pose` whose visible box has √(w·h) ≈ `size` px, centred on `centre`."""
    if pose not in POSES:
        raise ValueError(f"unknown pose {pose!r}; expected one of {POSES}")
    outfit = outfit or random_outfit(rng)
    joints = _skeleton(rng, pose)
    water = {"swimming": rng.uniform(0.27, 0.34), "wading": rng.uniform(0.45, 0.62)}.get(pose)
    angle = 0.0
    if pose == "lying":
        angle = math.radians(rng.choice([-1, 1]) * rng.uniform(75, 105))
    elif pose == "swimming":
        angle = math.radians(rng.uniform(-25, 25))
    # Lying people are seen obliquely from a camera above the beach: foreshorten their height.
    squash = rng.uniform(0.45, 0.7) if pose == "lying" else 1.0
    mirror = -1.0 if rng.random() < 0.5 else 1.0
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])

    def to_unit(points: np.ndarray) -> np.ndarray:  # body units -> pose-oriented units around the pelvis
        return ((points - joints["pelvis"]) * [mirror, 1.0]) @ rotation.T * [1.0, squash]

    body, styles = _visible_segments(joints, water)
    ends, head = to_unit(body), to_unit(joints["head"])
    unit_radii = np.array([LIMB_RADIUS[kind] for kind, _ in styles])
    # The scale that gives the requested size; the pixel floor on thin limbs (MIN_RADIUS) only
    # applies to the smallest people and makes their boxes a little larger, as it does on screen.
    lo, hi = _bounds(ends, unit_radii, head, HEAD_RADIUS)
    scale = size / math.sqrt(float(np.prod(hi - lo)))
    radii = np.maximum(MIN_RADIUS, unit_radii * scale)
    head_radius = max(MIN_RADIUS + 0.2, HEAD_RADIUS * scale)
    ends, head = ends * scale, head * scale
    lo, hi = _bounds(ends, radii, head, head_radius)
    offset = np.asarray(centre) - (lo + hi) / 2
    ends, (hx, hy) = ends + offset, head + offset
    colours = {"skin": outfit.skin, "hair": outfit.hair, "top": outfit.top, "bottom": outfit.bottom}
    parts = [Part(Capsule(*a, *b, r), colours[colour], alpha)
             for (a, b), r, (_, colour) in zip(ends.tolist(), radii.tolist(), styles)]
    parts.append(Part(Ellipse(hx, hy, head_radius * 0.88, head_radius), outfit.skin, alpha))
    # Hair as a cap on the top half of the head: a dark top is the most visible cue at 2-4 px.
    parts.append(Part(Ellipse(hx, hy - head_radius * 0.35, head_radius * 0.8, head_radius * 0.6), outfit.hair, alpha))
    decor: tuple[Part, ...] = ()
    if water is not None:  # a ring of foam where the body meets the water
        wx, wy = to_unit(np.array([0.0, water])) * scale + offset
        decor = (Part(Ellipse(wx, wy, max(1.0, 0.22 * scale), max(0.6, 0.05 * scale)), (235, 240, 240), 0.45),)
    return Figure(tuple(parts), union_bounds(parts), decor)
