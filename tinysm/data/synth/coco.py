"""A synthetic COCO 2017 folder: a handful of COCO categories at COCO-like sizes (reference §1.3).

Objects are about five times larger than the synthetic TinyPerson people and fill a far larger part
of ~640×480 frames: the contrast Scale Match exists to remove. Ids start at 1 and category ids
are COCO's own (non-contiguous), so code that assumes 0..K−1 labels fails here as on real COCO.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from tinysm.data.annotations import BoxAnnotation, CocoAnnotations, ImageRecord, save_annotations
from tinysm.data.layout import CocoLayout
from tinysm.data.synth import objects
from tinysm.data.synth.backgrounds import background
from tinysm.data.synth.frames import Frame, FrameJob, coco_bbox, render_frame
from tinysm.data.synth.scenes import LabelledBox, Painter, Placer, Scene, crowd, posed_person, sample_sizes
from tinysm.data.synth.workers import FramePool

PERSON = 1
CATEGORIES = [
    {"supercategory": "person", "id": PERSON, "name": "person"},
    {"supercategory": "vehicle", "id": 3, "name": "car"},
    {"supercategory": "vehicle", "id": 9, "name": "boat"},
    {"supercategory": "animal", "id": 16, "name": "bird"},
    {"supercategory": "accessory", "id": 28, "name": "umbrella"},
    {"supercategory": "sports", "id": 37, "name": "sports ball"},
]
# Where each non-person category may stand, and how it is drawn.
_OBJECTS = {
    3: (("sand",), objects.car),
    9: (("sea",), objects.boat),
    16: (("sky", "sea", "sand"), objects.bird),
    28: (("sand",), objects.umbrella),
    37: (("sea", "sand"), objects.ball),
}
SPLITS = ("train2017", "val2017")


@dataclass(frozen=True)
class CocoSceneConfig:
    """What a synthetic COCO frame contains; ranges are inclusive (low, high)."""

    frame_sizes: tuple[tuple[int, int], ...] = ((640, 480), (480, 640), (640, 427), (427, 640), (640, 360))
    objects: tuple[int, int] = (1, 7)
    size_median: float = 55.0   # √(w·h) px, about 5× the TinyPerson median (reference §1.3)
    size_sigma: float = 0.6
    size_range: tuple[float, float] = (8.0, 400.0)
    category_weights: tuple[float, ...] = (0.45, 0.08, 0.13, 0.12, 0.12, 0.10)  # in CATEGORIES order
    crowd_probability: float = 0.1  # a group of people annotated once, with iscrowd=1
    max_iou: float = 0.3
    softness: tuple[float, float] = (0.8, 1.5)


def coco_scene(rng: np.random.Generator, config: CocoSceneConfig = CocoSceneConfig()) -> Scene:
    """Paint one COCO-like frame: a beach or sea scene with a few large labelled objects."""
    width, height = config.frame_sizes[rng.integers(len(config.frame_sizes))]
    canvas, layout = background(rng, width, height, str(rng.choice(("beach", "shore", "sea"))))
    painter = Painter(canvas, rng.uniform(*config.softness))
    placer = Placer(layout, config.max_iou)
    boxes: list[LabelledBox] = []
    if rng.random() < config.crowd_probability:
        group = crowd(rng, painter, placer, sizes=(12, 25), radius=(30, 70), members=(5, 12))
        if group is not None:
            boxes.append(LabelledBox(group[0], PERSON, iscrowd=True))
    count = int(rng.integers(config.objects[0], config.objects[1] + 1))
    weights = np.asarray(config.category_weights) / sum(config.category_weights)
    categories = rng.choice([c["id"] for c in CATEGORIES], size=count, p=weights)
    limit = (config.size_range[0], min(config.size_range[1], 0.8 * min(width, height)))
    placed = []
    for category, size in zip(categories, sample_sizes(rng, count, config.size_median, config.size_sigma, limit)):
        if category == PERSON:
            spot = placer.place(rng, posed_person(rng, float(size)), ("sea", "sand"))
        else:
            regions, draw = _OBJECTS[int(category)]
            spot = placer.place(rng, lambda point, _: draw(rng, point, float(size)), regions)
        if spot is not None:
            placed.append((spot[0], int(category)))
    for figure, category in sorted(placed, key=lambda p: p[0].box[3]):  # nearer (lower) objects in front
        painter.draw(figure)
        boxes.append(LabelledBox(figure.box, category))
    return Scene(canvas, boxes)


def write_coco(root: str | Path, seed: int, train: int, val: int, pool: FramePool,
               config: CocoSceneConfig = CocoSceneConfig()) -> dict[str, CocoAnnotations]:
    """Write `annotations/instances_{train,val}2017.json` and the images; the annotations by split.

    Image and annotation ids are unique across both splits and start at 1, as in COCO.
    """
    layout = CocoLayout(Path(root))
    files: dict[str, CocoAnnotations] = {}
    first_image_id, first_annotation_id = 1, 1
    for split, count, stream in zip(SPLITS, (train, val), ("coco_train", "coco_val")):
        image_ids = range(first_image_id, first_image_id + count)
        file_names = [f"{image_id:012d}.jpg" for image_id in image_ids]
        jobs = [FrameJob(seed, stream, i, str(layout.images(split) / name), partial(coco_scene, config=config))
                for i, name in enumerate(file_names)]
        frames = pool.map(render_frame, jobs, f"coco {split}")
        annotations = _frames_to_coco(frames, image_ids, file_names, first_annotation_id)
        annotations.image_root = layout.images(split)
        save_annotations(annotations, layout.annotations(split))
        files[split] = annotations
        first_image_id += count
        first_annotation_id += len(annotations.annotations)
    return files


def _frames_to_coco(frames: list[Frame], image_ids: range, file_names: list[str],
                    first_annotation_id: int) -> CocoAnnotations:
    images, annotations = [], []
    for frame, image_id, file_name in zip(frames, image_ids, file_names):
        images.append(ImageRecord(image_id, file_name, frame.width, frame.height))
        for labelled in frame.boxes:
            bbox = coco_bbox(labelled.box, frame.width, frame.height)
            annotations.append(BoxAnnotation(
                id=first_annotation_id + len(annotations), image_id=image_id, category_id=labelled.category_id,
                bbox=bbox, area=bbox[2] * bbox[3], iscrowd=labelled.iscrowd,
                present=frozenset({"area", "iscrowd"}), int_flags=frozenset({"iscrowd"})))
    return CocoAnnotations(images, annotations, [dict(c) for c in CATEGORIES])
