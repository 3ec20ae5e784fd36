"""Tiled full-image inference (reference §2): cut each image into test tiles, detect, merge back.

Tiles come from `tile_grid` (640×512, overlap 100, no resize, reference §2.1) and are batched across
image boundaries; each image is merged as soon as its last tile is done, with the variant of
reference §2.3 that the model declares (`model.merge_variant`), so memory stays bounded by one batch
plus the images in flight. The answer is a COCO results list that `evaluate_tiny` takes directly.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tinysm.terminal import progress_bar

from tinysm.data.annotations import CocoAnnotations
from tinysm.data.merge import MERGE_VARIANTS, MergeConfig, merge_tile_detections
from tinysm.data.tiles import TEST_OVERLAP, TEST_TILE, require_full_images, tile_grid
from tinysm.io import atomic_write_json



@dataclass
class TileJob:
    """One tile of one full image, waiting for the detector."""

    image_id: int
    corner: tuple[int, int, int, int]
    pixels: Tensor  # 3×h×w, uint8 or float in [0, 1]
    tiles_in_image: int


def predict(model: nn.Module, dataset: Dataset, tile: tuple[int, int] = TEST_TILE,
            overlap: tuple[int, int] = TEST_OVERLAP, batch_size: int = 8, device: str | torch.device | None = None,
            num_workers: int = 0, amp: bool = False, results_path: str | Path | None = None,
            progress: bool = True) -> list[dict[str, Any]]:
    """COCO results of `model` on the full images of `dataset`, tiled and merged (reference §2.1, §2.3).

    `dataset` yields (image 3×H×W uint8 or float in [0, 1], target with `image_id`), e.g. a
    `DetectionDataset` of a full-image annotation file. `model` is a bare detector of
    `tinysm.models` (not a DDP wrapper). `amp`: fp16 autocast on CUDA (boxes stay float32).
    `results_path`: also write the results there, atomically.
    """
    variant = getattr(model, "merge_variant", None)
    if variant not in MERGE_VARIANTS or not hasattr(model, "tile_detections"):
        raise ValueError(f"predict needs a tinysm.models detector (a DDP wrapper's .module), whose merge_variant "
                         f"is one of {sorted(MERGE_VARIANTS)}; got {type(model).__name__} with {variant!r}")
    check_full_images(dataset)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    if amp and device.type != "cuda":
        raise ValueError(f"amp=True runs fp16 autocast on CUDA; the model is on {device}")
    merge_config = MERGE_VARIANTS[variant]()
    loader = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda")
    was_training = model.training
    model.eval()
    results: list[dict[str, Any]] = []
    in_flight: dict[int, list[tuple[tuple[int, int, int, int], dict[str, Tensor]]]] = {}
    try:
        with torch.inference_mode(), torch.autocast(device.type, torch.float16, enabled=amp), \
                progress_bar(total=len(dataset), unit="img", desc="predict", disable=not progress) as bar:
            for batch in batched(tile_jobs(loader, tile, overlap), batch_size):
                images = [as_float_image(job.pixels.to(device, non_blocking=True)) for job in batch]
                for job, detections in zip(batch, model.tile_detections(images)):
                    done = in_flight.setdefault(job.image_id, [])
                    done.append((job.corner, {key: value.cpu() for key, value in detections.items()}))
                    if len(done) == job.tiles_in_image:
                        results += merge_image(job.image_id, in_flight.pop(job.image_id), merge_config)
                        bar.update(1)
    finally:
        model.train(was_training)
    if results_path is not None:
        atomic_write_json(results_path, results, indent=None)
    return results


def check_full_images(dataset: Dataset) -> None:
    """Refuse a dataset of tiles: tiled inference cuts full images itself (the data layer's guard)."""
    annotations = getattr(dataset, "annotations", None)
    if isinstance(annotations, CocoAnnotations):
        require_full_images(annotations, "predict")


def tile_jobs(images: Iterable[tuple[Tensor, dict[str, Any]]], tile: tuple[int, int],
              overlap: tuple[int, int]) -> Iterator[TileJob]:
    """Every tile of every image, in image order then `tile_grid` order."""
    seen: set[int] = set()
    for pixels, target in images:
        image_id = int(target["image_id"])
        if image_id in seen:
            raise ValueError(f"image id {image_id} appears twice in the dataset")
        seen.add(image_id)
        height, width = pixels.shape[-2:]
        corners = tile_grid(width, height, tile, overlap)
        for x1, y1, x2, y2 in corners:
            yield TileJob(image_id, (x1, y1, x2, y2), pixels[:, y1:y2, x1:x2], len(corners))


def batched(jobs: Iterable[TileJob], size: int) -> Iterator[list[TileJob]]:
    """Consecutive lists of `size` jobs (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"batch_size must be at least 1, got {size}")
    batch: list[TileJob] = []
    for job in jobs:
        batch.append(job)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def as_float_image(pixels: Tensor) -> Tensor:
    """Float32 in [0, 1]: uint8 tiles travel to the device at a quarter of the size, then scale."""
    return pixels.float().div_(255) if pixels.dtype == torch.uint8 else pixels.float()


def merge_image(image_id: int, tiles: list[tuple[tuple[int, int, int, int], dict[str, Tensor]]],
                config: MergeConfig) -> list[dict[str, Any]]:
    """COCO results of one image from its tiles' detections (reference §2.3)."""
    boxes = torch.cat([d["boxes"] for _, d in tiles]).double().numpy()
    arrays = {
        "image_id": np.repeat(np.arange(len(tiles)), [len(d["boxes"]) for _, d in tiles]),
        "category_id": torch.cat([d["labels"] for _, d in tiles]).numpy(),
        "bbox": np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]]),
        "score": torch.cat([d["scores"] for _, d in tiles]).double().numpy(),
    }
    offsets = {index: (image_id, corner[0], corner[1]) for index, (corner, _) in enumerate(tiles)}
    return merge_tile_detections(arrays, offsets, config=config).to_results()
