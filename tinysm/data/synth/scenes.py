"""TinyPerson-like frames: people at sea and on the beach among boats, buoys and birds.

A scene is painted back to front (background, distractors, ignore crowds, people, uncertain
blobs, a channel logo) and returns its labelled boxes. Sizes follow reference §1.3: most people have
√(w·h) between 2 and 20 px in 1280×720 to 1920×1080 frames, with plenty of 8–20 px ones.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from tinysm.data.synth import objects
from tinysm.data.synth.backgrounds import KINDS, SceneLayout, background
from tinysm.data.synth.figures import LAND_POSES, WATER_POSES, Figure, Outfit, person
from tinysm.data.synth.raster import Box, Part, Polygon, paint_all

SEA_PERSON, EARTH_PERSON = 1, 2  # raw TinyPerson categories (reference §1.2)
ROLES = ("regular", "dense", "background")


@dataclass(frozen=True)
class TinyPersonSceneConfig:
    """What a synthetic TinyPerson frame contains; ranges are inclusive (low, high)."""

    frame_sizes: tuple[tuple[int, int], ...] = ((1280, 720), (1440, 810), (1600, 900), (1920, 1080))
    persons: tuple[int, int] = (10, 45)
    dense_persons: tuple[int, int] = (205, 260)  # > 200 boxes makes an image dense (reference §1.2)
    size_median: float = 11.0                    # √(w·h) in px: log-normal around this median
    size_sigma: float = 0.55
    size_range: tuple[float, float] = (2.0, 60.0)
    dense_size_median: float = 7.0
    crowds: tuple[int, int] = (0, 2)             # ignore regions: groups too packed to box one by one
    uncertain: tuple[int, int] = (0, 3)          # faint blobs that may or may not be people
    logo_probability: float = 0.1
    boats: tuple[int, int] = (0, 3)
    buoys: tuple[int, int] = (0, 6)
    birds: tuple[int, int] = (0, 6)
    max_iou: float = 0.05                        # people barely overlap, except in dense frames
    dense_max_iou: float = 0.3
    softness: tuple[float, float] = (1.0, 1.8)   # edge ramp in px: the lens blur of each frame


@dataclass(frozen=True)
class LabelledBox:
    """One annotation of a synthetic frame: xyxy box, category and the flags of reference §1.2."""

    box: Box
    category_id: int
    ignore: bool = False
    uncertain: bool = False
    logo: bool = False
    iscrowd: bool = False


@dataclass
class Scene:
    """A painted frame (H×W×3 uint8) and its labelled boxes."""

    canvas: np.ndarray
    boxes: list[LabelledBox]


def _count(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    return int(rng.integers(bounds[0], bounds[1] + 1))


def sample_sizes(rng: np.random.Generator, n: int, median: float, sigma: float,
                 size_range: tuple[float, float]) -> np.ndarray:
    """`n` person sizes √(w·h): log-normal around `median`, clipped to `size_range`."""
    return np.clip(median * np.exp(sigma * rng.standard_normal(n)), *size_range)


class Placer:
    """Finds spots for figures: inside the frame, in the allowed regions, not overlapping earlier ones."""

    def __init__(self, layout: SceneLayout, max_iou: float):
        self.layout = layout
        self.max_iou = max_iou
        self.taken = np.zeros((0, 4))

    def random_point(self, rng: np.random.Generator, with_sky: bool = False) -> tuple[float, float]:
        top = 0 if with_sky else self.layout.horizon
        return (rng.uniform(0, self.layout.width), rng.uniform(top, self.layout.height))

    def fits(self, box: Box, with_sky: bool = False) -> bool:
        """Inside the frame (and below the horizon unless `with_sky`), IoU ≤ max_iou with every taken box."""
        x1, y1, x2, y2 = box
        top = 0 if with_sky else self.layout.horizon
        if x1 < 0 or y1 < top or x2 > self.layout.width or y2 > self.layout.height:
            return False
        if not len(self.taken):
            return True
        ix = np.clip(np.minimum(x2, self.taken[:, 2]) - np.maximum(x1, self.taken[:, 0]), 0, None)
        iy = np.clip(np.minimum(y2, self.taken[:, 3]) - np.maximum(y1, self.taken[:, 1]), 0, None)
        inter = ix * iy
        areas = (self.taken[:, 2] - self.taken[:, 0]) * (self.taken[:, 3] - self.taken[:, 1])
        union = (x2 - x1) * (y2 - y1) + areas - inter
        return bool((inter / union <= self.max_iou).all())

    def take(self, box: Box) -> None:
        self.taken = np.vstack([self.taken, box])

    def place(self, rng: np.random.Generator, make: Callable[[tuple[float, float], str], Figure],
              regions: tuple[str, ...], tries: int = 20) -> tuple[Figure, str] | None:
        """`make(point, region)` at the first random point in `regions` where the figure fits, or None."""
        with_sky = "sky" in regions
        for _ in range(tries):
            point = self.random_point(rng, with_sky)
            region = self.layout.region(*point)
            if region not in regions:
                continue
            figure = make(point, region)
            if self.fits(figure.box, with_sky):
                self.take(figure.box)
                return figure, region
        return None


def posed_person(rng: np.random.Generator, size: float, alpha: float = 1.0) -> Callable[[tuple[float, float], str], Figure]:
    """A `Placer.place` maker: a person of `size` standing, walking or lying on sand, swimming or wading at sea."""
    def make(point: tuple[float, float], region: str) -> Figure:
        pose = str(rng.choice(LAND_POSES if region == "sand" else WATER_POSES))
        return person(rng, point, size, pose, alpha=alpha)
    return make


def raw_category(region: str) -> int:
    """TinyPerson's raw class: people on the sand are earth_person, the others sea_person."""
    return EARTH_PERSON if region == "sand" else SEA_PERSON


@dataclass
class Painter:
    """The frame being painted and its edge softness (the lens blur of this frame, see `raster.paint`)."""

    canvas: np.ndarray
    softness: float = 1.0

    def draw(self, figure: Figure) -> None:
        paint_all(self.canvas, figure.decor + figure.parts, self.softness)


def _distractors(rng: np.random.Generator, painter: Painter, layout: SceneLayout,
                 config: TinyPersonSceneConfig) -> None:
    """Boats and buoys on the water, birds anywhere: unlabelled, they teach the detector what is not a person."""
    placer = Placer(layout, max_iou=0.0)
    sizes = ([(objects.boat, rng.uniform(15, 90)) for _ in range(_count(rng, config.boats))]
             + [(objects.buoy, rng.uniform(3, 9)) for _ in range(_count(rng, config.buoys))])
    for draw, size in sizes:
        placed = placer.place(rng, lambda point, _: draw(rng, point, size), ("sea",), tries=10)
        if placed is not None:
            painter.draw(placed[0])
    for _ in range(_count(rng, config.birds)):
        point = (rng.uniform(0, layout.width), rng.uniform(0, layout.height))
        painter.draw(objects.bird(rng, point, rng.uniform(4, 16)))


def crowd(rng: np.random.Generator, painter: Painter, placer: Placer, sizes: tuple[float, float] = (3, 8),
          radius: tuple[float, float] = (15, 45), members: tuple[int, int] = (8, 25)) -> tuple[Box, str] | None:
    """A packed group of people, painted when it fits; its box and region (one box for the group)."""
    x, y = placer.random_point(rng)
    region = placer.layout.region(x, y)
    poses = LAND_POSES if region == "sand" else WATER_POSES
    spread = rng.uniform(*radius)
    figures = []
    for _ in range(_count(rng, members)):
        angle, distance = rng.uniform(0, 2 * math.pi), spread * math.sqrt(rng.random())
        point = (x + distance * math.cos(angle), y + 0.5 * distance * math.sin(angle))
        figures.append(person(rng, point, rng.uniform(*sizes), str(rng.choice(poses))))
    boxes = np.array([f.box for f in figures])
    box = tuple(float(v) for v in (*boxes[:, :2].min(axis=0), *boxes[:, 2:].max(axis=0)))
    if not placer.fits(box):
        return None
    placer.take(box)
    for figure in sorted(figures, key=lambda f: f.box[3]):  # back to front
        painter.draw(figure)
    return box, region


def _logo(rng: np.random.Generator, painter: Painter, layout: SceneLayout) -> LabelledBox:
    """A broadcaster's logo with a person icon in a corner: a 'logo' box, ignored (reference §1.2)."""
    w, h = rng.uniform(50, 90), rng.uniform(35, 50)
    x1 = 20 if rng.random() < 0.5 else layout.width - 20 - w
    y1 = 20
    plate = Part(Polygon(((x1, y1), (x1 + w, y1), (x1 + w, y1 + h), (x1, y1 + h))), (250, 250, 250), 0.45)
    white = (255.0, 255.0, 255.0)
    icon = person(rng, (x1 + h * 0.5, y1 + h * 0.5), h * 0.45, "standing", Outfit(white, white, white, white))
    paint_all(painter.canvas, [plate, *icon.parts], painter.softness)
    return LabelledBox(icon.box, EARTH_PERSON, ignore=True, logo=True)


def tinyperson_scene(rng: np.random.Generator, role: str = "regular",
                     config: TinyPersonSceneConfig = TinyPersonSceneConfig()) -> Scene:
    """Paint one frame: `regular` (people, crowds, blobs), `dense` (> 200 people) or `background` (none)."""
    if role not in ROLES:
        raise ValueError(f"unknown scene role {role!r}; expected one of {ROLES}")
    width, height = config.frame_sizes[rng.integers(len(config.frame_sizes))]
    kind = str(rng.choice(("beach", "shore") if role == "dense" else KINDS))
    canvas, layout = background(rng, width, height, kind)
    painter = Painter(canvas, rng.uniform(*config.softness))
    _distractors(rng, painter, layout, config)
    if role == "background":
        return Scene(canvas, [])
    dense = role == "dense"
    placer = Placer(layout, config.dense_max_iou if dense else config.max_iou)
    boxes: list[LabelledBox] = []
    if not dense:
        # Groups too packed to box one by one are one ignore region each (reference §1.2).
        for group in filter(None, (crowd(rng, painter, placer) for _ in range(_count(rng, config.crowds)))):
            boxes.append(LabelledBox(group[0], raw_category(group[1]), ignore=True))
    count = _count(rng, config.dense_persons if dense else config.persons)
    median = config.dense_size_median if dense else config.size_median
    for size in sample_sizes(rng, count, median, config.size_sigma, config.size_range):
        placed = placer.place(rng, posed_person(rng, float(size)), ("sea", "sand"))
        if placed is not None:
            painter.draw(placed[0])
            boxes.append(LabelledBox(placed[0].box, raw_category(placed[1])))
    if not dense:
        for _ in range(_count(rng, config.uncertain)):
            faint = posed_person(rng, rng.uniform(3, 8), alpha=rng.uniform(0.3, 0.5))
            placed = placer.place(rng, faint, ("sea", "sand"))
            if placed is not None:
                painter.draw(placed[0])
                boxes.append(LabelledBox(placed[0].box, raw_category(placed[1]), uncertain=True))
        if rng.random() < config.logo_probability:
            boxes.append(_logo(rng, painter, layout))
    return Scene(canvas, boxes)
