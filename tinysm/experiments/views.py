"""What the experiment notebook shows, as arrays for `tinysm.plots.results`: training tiles, COCO
images before and after Scale Match, and a test image with its ground truth and detections."""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch

from tinysm.data.annotations import CocoAnnotations, load_annotations
from tinysm.data.datasets import DetectionDataset
from tinysm.data.layout import layouts
from tinysm.experiments.run import evaluation_set
from tinysm.experiments.stages import stage_config
from tinysm.scale_match import METHODS, SizeMatchTransform
from tinysm.experiments.config import ExperimentConfig
from tinysm.plots.results import ImagePanel


def _spread(count: int, total: int) -> list[int]:
    """`count` indices spread evenly over range(total)."""
    return sorted({int(i) for i in np.linspace(0, total - 1, num=min(count, total))}) if total else []


def _with_boxes(annotations: CocoAnnotations) -> list[int]:
    """Indices of the images that hold at least one regular box."""
    by_image = annotations.annotations_by_image
    return [i for i, image in enumerate(annotations.images) if any(not a.is_ignored for a in by_image[image.id])]


def training_tiles(config: ExperimentConfig, count: int = 6) -> list[ImagePanel]:
    """A few fine-tuning tiles (640×512 crops of the erased training images, reference §2) with boxes."""
    tiny_set, _ = layouts(config.data_dir)
    tiles = load_annotations(tiny_set.train_tile_annotations, tiny_set.erase_train_images)
    dataset = DetectionDataset(tiles, drop_ignored=True)
    candidates = _with_boxes(tiles)
    panels = []
    for index in (candidates[i] for i in _spread(count, len(candidates))):
        image, target = dataset[index]
        boxes = target["boxes"].numpy()
        sizes = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
        panels.append(ImagePanel(image.numpy(), boxes, f"tile {tiles.images[index].id}: {len(boxes)} persons, "
                                 f"median √(wh) {np.median(sizes):.1f} px", (image.shape[-1], image.shape[-2])))
    return panels


def scale_match_transform(config: ExperimentConfig) -> SizeMatchTransform:
    """The pre-training's size-matching transform (reference §4, §5), as the engine builds it."""
    from tinysm.engine.data import training_transform

    train_config = stage_config(config, "pretrain")
    return training_transform(train_config, load_annotations(train_config.train_annotations)).scale_match


def scale_matched_images(config: ExperimentConfig, count: int = 3) -> list[ImagePanel]:
    """Pairs of panels: a COCO training image, then the same image as the pre-training sees it
    after its size matching (reference §4, §5), drawn in the original's frame so the shrink is visible;
    none when the experiment pre-trains without size matching."""
    if config.pretrain not in METHODS:
        return []
    _, coco_layout = layouts(config.data_dir)
    coco = load_annotations(coco_layout.annotations(), coco_layout.images())
    dataset = DetectionDataset(coco, drop_ignored=True)
    transform = scale_match_transform(config)
    candidates = _with_boxes(coco)
    panels = []
    for index in (candidates[i] for i in _spread(count, len(candidates))):
        image, target = dataset[index]
        # SM draws from a stream seeded by torch's seed: fix it here, and only here, so the figure
        # is the same on every run of the notebook.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed + index)
            matched, matched_target = transform(image, target)
        height, width = image.shape[-2:]
        boxes, new_boxes = target["boxes"].numpy(), matched_target["boxes"].numpy()
        scale = matched.shape[-1] / width
        panels.append(ImagePanel(image.numpy(), boxes, f"COCO image {coco.images[index].id}: {width}×{height}, "
                                 f"mean box {_mean_size(boxes):.0f} px", (width, height)))
        panels.append(ImagePanel(matched.numpy(), new_boxes, f"after {config.pretrain.upper()}: ×{scale:.2f}, "
                                 f"mean box {_mean_size(new_boxes):.1f} px", (width, height)))
    return panels


def _mean_size(boxes_xyxy: np.ndarray) -> float:
    """Geometric mean of √(wh) (the per-image size Scale Match rescales, reference §4 step 1)."""
    sizes = np.sqrt(np.clip(boxes_xyxy[:, 2] - boxes_xyxy[:, 0], 0, None)
                    * np.clip(boxes_xyxy[:, 3] - boxes_xyxy[:, 1], 0, None))
    sizes = sizes[sizes > 0]
    return float(np.exp(np.log(sizes).mean())) if sizes.size else float("nan")


@dataclass
class DetectionExample:
    """A test image, its ground truth (with the ignore flags, reference §6) and the run's detections."""

    image: np.ndarray
    gt_boxes: np.ndarray
    gt_ignored: np.ndarray
    det_boxes: np.ndarray
    det_scores: np.ndarray
    image_id: int


def detection_example(config: ExperimentConfig) -> DetectionExample:
    """The evaluated test image with the most persons, with this run's detections on it."""
    detections = json.loads((config.run_dir / "results.json").read_text())
    test = evaluation_set(config)
    by_image = test.annotations_by_image
    index = max(range(len(test.images)), key=lambda i: sum(not a.is_ignored for a in by_image[test.images[i].id]))
    image, target = DetectionDataset(test)[index]
    image_id = test.images[index].id
    mine = [d for d in detections if d["image_id"] == image_id]
    det_boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (d["bbox"] for d in mine)]).reshape(-1, 4)
    return DetectionExample(image.numpy(), target["boxes"].numpy(), target["ignore"].numpy(), det_boxes,
                            np.array([d["score"] for d in mine]), image_id)


# The size ranges the paper's figures compare (reference §6.1, §6.2); "all" and "reasonable" hold few
# TinyPerson boxes and only crowd the plot.
CURVE_RANGES = ("tiny1", "tiny2", "tiny3", "tiny", "small")


def pr_curves(result, iou: float = 0.5) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{range: (recall, precision)} of a `TinyResult` at one IoU threshold."""
    return {name: result.pr_curve(iou, name) for name in CURVE_RANGES if name in result.ap_ranges}


def mr_curves(result, iou: float = 0.5) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{setup: (fppi, miss rate)} of a `TinyResult` at one IoU threshold."""
    return {name: result.mr_curve(iou, name) for name in CURVE_RANGES if name in result.mr_setups}
