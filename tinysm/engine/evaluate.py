"""Evaluation during training: tiled inference on full images (reference §2.3), then the TinyPerson
AP/MR protocol (reference §6)."""
from __future__ import annotations

from pathlib import Path

import torch

from tinysm.data.annotations import load_annotations
from tinysm.data.datasets import DetectionDataset
from tinysm.engine.config import TrainConfig
from tinysm.paths import resolve


def evaluate_on(model: torch.nn.Module, annotations: str | Path, image_root: str | Path,
                amp: bool = False, progress: bool = True) -> dict[str, float]:
    """The flat metrics of reference §6.4 (`AP50_tiny`, ...) of a bare detector on a full-image file."""
    from tinysm.engine.predict import predict
    from tinysm.evaluation import evaluate_tiny

    ground_truth = load_annotations(annotations, image_root=image_root)
    # uint8 pixels: predict cuts the tiles and scales them to [0, 1] on the model's device.
    results = predict(model, DetectionDataset(ground_truth), amp=amp, progress=progress)
    return evaluate_tiny(ground_truth, results).metrics


def evaluate_detector(model: torch.nn.Module, config: TrainConfig) -> dict[str, float]:
    """The metrics of `model` on the stage's configured eval set (fp16 on CUDA when `amp`)."""
    device = next(model.parameters()).device
    return evaluate_on(model, resolve(config.eval_annotations), resolve(config.eval_images),
                       amp=config.amp and device.type == "cuda")
