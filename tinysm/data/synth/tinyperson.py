"""A synthetic `tiny_set/` in the official TinyPerson layout (reference §1.1): every file a real user has.

The raw training file keeps both raw classes and every flag; the derived files are made by the same
library functions a user would run on the real release (to_all_task, drop_dense_images, erase,
cut_tiles), so the synthetic set exercises exactly the real data path.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from tinysm.data.annotations import (
    FLAG_KEYS, BoxAnnotation, CocoAnnotations, ImageRecord, drop_dense_images, save_annotations, to_all_task,
)
from tinysm.data.layout import TinyPersonLayout
from tinysm.data.synth.frames import Frame, FrameJob, coco_bbox, render_frame
from tinysm.data.synth.scenes import EARTH_PERSON, SEA_PERSON, TinyPersonSceneConfig, tinyperson_scene
from tinysm.data.synth.workers import SPLIT_LEVEL, FramePool, image_rng
from tinysm.data.tiles import TRAIN_OVERLAP, cut_tiles

RAW_CATEGORIES = [{"id": SEA_PERSON, "name": "sea_person", "supercategory": "person"},
                  {"id": EARTH_PERSON, "name": "earth_person", "supercategory": "person"}]
# The official files write area and every flag on every box (iscrowd as 0/1, the others as booleans).
_WRITTEN_KEYS = frozenset(("area", *FLAG_KEYS))


def assign_roles(count: int, rng: np.random.Generator, dense_fraction: float = 0.03,
                 background_fraction: float = 0.08) -> list[str]:
    """Roles of a split's frames in random order: a few dense, some pure background, the rest regular.

    From 3 frames on there is at least one of each, so even a tiny test set has every kind.
    """
    minimum = 1 if count >= 3 else 0
    dense = max(minimum, round(count * dense_fraction))
    background = max(minimum, round(count * background_fraction))
    roles = ["dense"] * dense + ["background"] * background + ["regular"] * (count - dense - background)
    return [roles[i] for i in rng.permutation(count)]


def frames_to_annotations(frames: list[Frame], file_names: list[str], roles: list[str]) -> CocoAnnotations:
    """The raw annotation file of a split: ids from 0 (as the official files), raw categories, every flag."""
    images, annotations = [], []
    for image_id, (frame, file_name, role) in enumerate(zip(frames, file_names, roles)):
        images.append(ImageRecord(image_id, file_name, frame.width, frame.height))
        for labelled in frame.boxes:
            bbox = coco_bbox(labelled.box, frame.width, frame.height)
            annotations.append(BoxAnnotation(
                id=len(annotations), image_id=image_id, category_id=labelled.category_id, bbox=bbox,
                area=bbox[2] * bbox[3], ignore=labelled.ignore, uncertain=labelled.uncertain,
                logo=labelled.logo, in_dense_image=role == "dense",
                present=_WRITTEN_KEYS, int_flags=frozenset({"iscrowd"})))
    return CocoAnnotations(images, annotations, [dict(c) for c in RAW_CATEGORIES])


def render_split(layout: TinyPersonLayout, split: str, count: int, seed: int, pool: FramePool,
                 config: TinyPersonSceneConfig) -> CocoAnnotations:
    """Draw and save the `count` frames of `split` ('train' or 'test'); their raw annotations."""
    stream = f"tiny_{split}"
    roles = assign_roles(count, image_rng(seed, stream, SPLIT_LEVEL))
    root = layout.train_images if split == "train" else layout.test_images
    file_names = [f"labeled_images/synth_{split}_{i:05d}.jpg" for i in range(count)]
    jobs = [FrameJob(seed, stream, i, str(root / name), partial(tinyperson_scene, role=role, config=config))
            for i, (name, role) in enumerate(zip(file_names, roles))]
    frames = pool.map(render_frame, jobs, f"tiny_set {split}")
    annotations = frames_to_annotations(frames, file_names, roles)
    annotations.image_root = root
    return annotations


def write_tinyperson(root: str | Path, seed: int, train: int, test: int, pool: FramePool,
                     config: TinyPersonSceneConfig = TinyPersonSceneConfig()) -> dict[str, CocoAnnotations]:
    """Write a synthetic `tiny_set/` at `root`; returns its annotation files by layout attribute name."""
    # Imported here: erase needs torch, and the spawned workers that import this module do not.
    from tinysm.data.erase import write_erased_dataset

    layout = TinyPersonLayout(Path(root))
    train_raw = render_split(layout, "train", train, seed, pool, config)
    test_all = to_all_task(render_split(layout, "test", test, seed, pool, config))
    # Training files as released (reference §1.2): erased images, "all" task, no dense images, no
    # ignore/uncertain boxes (logo boxes are ignore boxes here, so they go too), then the
    # "old 640x512" tiles with overlap 50 (reference §2.1).
    erased = write_erased_dataset(train_raw, layout.train_images, layout.erase_train_images)
    train_erase = drop_dense_images(to_all_task(erased))
    files = {
        "train_annotations": train_raw,
        "test_annotations": test_all,
        "mini_test_annotations": drop_dense_images(test_all),
        "train_erase_annotations": train_erase,
        "train_tile_annotations": cut_tiles(train_erase, (640, 512), TRAIN_OVERLAP),
    }
    for name, annotations in files.items():
        save_annotations(annotations, getattr(layout, name))
    return files
