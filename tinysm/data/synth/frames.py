"""One synthetic frame, from its random stream to a JPEG on disk: the unit of work of both writers."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from tinysm.data.synth.camera import encode_frame
from tinysm.data.synth.raster import Box
from tinysm.data.synth.scenes import LabelledBox, Scene
from tinysm.data.synth.workers import image_rng
from tinysm.io import atomic_write_bytes


@dataclass(frozen=True)
class FrameJob:
    """What a worker process needs: the frame's stream, where to save it, and how to draw it.

    `draw` is a module-level function or a functools.partial of one, so it pickles for spawn.
    """

    seed: int
    stream: str
    index: int
    path: str
    draw: Callable[[np.random.Generator], Scene]


@dataclass(frozen=True)
class Frame:
    """A saved frame's size and labelled boxes (xyxy, unclipped)."""

    width: int
    height: int
    boxes: tuple[LabelledBox, ...]


def render_frame(job: FrameJob) -> Frame:
    """Draw frame `job.index` from its own random stream and save it as JPEG (atomically)."""
    rng = image_rng(job.seed, job.stream, job.index)
    scene = job.draw(rng)
    height, width = scene.canvas.shape[:2]
    atomic_write_bytes(Path(job.path), encode_frame(scene.canvas, rng))
    return Frame(width, height, tuple(scene.boxes))


def coco_bbox(box: Box, width: int, height: int) -> tuple[float, float, float, float]:
    """(x, y, w, h) of an xyxy box clipped to the image, at 1/100 px like a human annotation."""
    x1, y1 = max(0.0, box[0]), max(0.0, box[1])
    x2, y2 = min(float(width), box[2]), min(float(height), box[3])
    return (round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2))
