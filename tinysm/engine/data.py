"""The training data of one stage: annotations -> dataset with its preset -> seeded, resumable loader.

Augmentation randomness (flip, Scale Match draws) of sample i in epoch e is a pure function of
(seed, e, i): it does not depend on the number of DataLoader workers or processes, and a run
resumed mid-epoch draws exactly what the uninterrupted run would have drawn.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from tinysm.data.annotations import BoxAnnotation, CocoAnnotations, ImageRecord, load_annotations
from tinysm.data.datasets import DetectionDataset, Target, collate_detection
from tinysm.data.transforms import PairTransform, PretrainPreset, TrainPreset
from tinysm.engine.config import TrainConfig
from tinysm.engine.distributed import DistributedContext, ResumableSampler
from tinysm.paths import resolve
from tinysm.scale_match import METHODS, SizeMatchSettings


class SeededSamples(Dataset):
    """`dataset[i]` drawn under torch seed f(seed, epoch, i), in a forked RNG that leaves the
    caller's streams alone. `ScaleMatch` with its default `rng=None` seeds its numpy stream from
    that torch seed, so its draws are covered too."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset = dataset
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Call before creating the epoch's iterator (workers copy the dataset when they start)."""
        self.epoch = epoch

    def sample_seed(self, index: int) -> int:
        return int(np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1)[0])

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Target]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.sample_seed(index))
            return self.dataset[index]


def first_images(annotations: CocoAnnotations, count: int | None) -> CocoAnnotations:
    """The first `count` images and their boxes (all of them when `count` is None)."""
    if count is None or count >= len(annotations.images):
        return annotations
    images = annotations.images[:count]
    kept = {image.id for image in images}
    return annotations.with_annotations([a for a in annotations.annotations if a.image_id in kept], images)


def reference_training_set(annotations: CocoAnnotations) -> tuple[CocoAnnotations, str | None]:
    """The training data as the reference's datasets read it (reference §7.1): images without any
    annotation are left out; then boxes with w < 1, h < 1, area ≤ 0 or no overlap with their image
    are dropped (an image whose boxes all go stays, without boxes). Returns the subset and a note
    saying what was left out (None when nothing was)."""
    by_image = annotations.annotations_by_image
    images = [image for image in annotations.images if by_image[image.id]]

    def usable(box: BoxAnnotation, image: ImageRecord) -> bool:
        x, y, w, h = box.bbox
        overlap_w = min(x + w, image.width) - max(x, 0)
        overlap_h = min(y + h, image.height) - max(y, 0)
        return w >= 1 and h >= 1 and box.area > 0 and overlap_w > 0 and overlap_h > 0

    boxes = [box for image in images for box in by_image[image.id] if usable(box, image)]
    empty, dropped = len(annotations.images) - len(images), len(annotations.annotations) - len(boxes)
    if not (empty or dropped):
        return annotations, None
    note = (f"{annotations.source}: as the reference (docs/reference.md §7.1), {empty} image(s) without "
            f"annotations and {dropped} box(es) with w < 1, h < 1, area <= 0 or outside the image are left out")
    return annotations.with_annotations(boxes, images), note


def category_ids(annotations: CocoAnnotations) -> list[int]:
    """The classes a detector for this file predicts: its categories' ids, ascending."""
    ids = sorted({int(c["id"]) for c in annotations.categories})
    if not ids:
        raise ValueError(f"{annotations.source}: the file lists no categories to train on")
    return ids


def training_transform(config: TrainConfig, annotations: CocoAnnotations) -> PairTransform:
    """The stage's preset: flip only, or a size-matching method of `METHODS` first (reference §4, §5, §8).

    The method's source is `sm_source_annotations` when set, else the external file `annotations`
    (Monotone SM maps its sizes, reference §5).
    """
    if config.scale_match == "none":
        return TrainPreset()
    settings = SizeMatchSettings(config.sm_bins, config.sm_tail_rate, tuple(config.sm_scale_range),
                                 config.sm_default_scale, config.sm_max_tries, resize=config.sm_resize)
    target = load_annotations(resolve(config.sm_target_annotations))
    source = annotations if config.sm_source_annotations is None else load_annotations(
        resolve(config.sm_source_annotations), allow_degenerate_boxes=True)  # sizes <= 0 do not count (§5)
    return PretrainPreset(METHODS[config.scale_match].build(target, source, settings))


def build_training_data(config: TrainConfig, context: DistributedContext
                        ) -> tuple[DataLoader, SeededSamples, ResumableSampler, list[int]]:
    """Loader, its seeded dataset and sampler (both set per epoch), and the category ids to train."""
    annotations = load_annotations(resolve(config.train_annotations), image_root=resolve(config.train_images),
                                   allow_degenerate_boxes=True)
    transform = training_transform(config, annotations)
    trainable, note = reference_training_set(annotations)
    if note and context.is_main:
        tqdm.write(note)
    subset = first_images(trainable, config.max_images)
    if not subset.images:
        raise ValueError(f"{annotations.source}: no images to train on")
    # Training never uses ignore handling (reference §1.2): ignore-flagged boxes leave the targets.
    dataset = SeededSamples(DetectionDataset(subset, transforms=transform, drop_ignored=True), config.seed)
    sampler = ResumableSampler(dataset, context, config.seed)
    # The loader's own generator: creating an epoch's iterator must not draw from the global torch
    # stream, which the detectors' samplers use (a resumed run would otherwise drift from the original).
    loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, num_workers=config.workers,
                        collate_fn=collate_detection, pin_memory=context.device.type == "cuda",
                        generator=torch.Generator().manual_seed(config.seed))
    return loader, dataset, sampler, category_ids(annotations)
