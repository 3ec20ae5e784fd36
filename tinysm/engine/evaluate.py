"""Evaluation during training: tiled inference on full images (SPEC §2.3), then the TinyPerson
AP/MR protocol (SPEC §6)."""
from __future__ import annotations

from pathlib import Path

import torch

from tinysm.data.annotations import load_annotations
from tinysm.data.datasets import DetectionDataset
from tinysm.data.transforms import EvalPreset
from tinysm.engine.config import TrainConfig
from tinysm.paths import resolve


def evaluate_on(model: torch.nn.Module, annotations: str | Path, image_root: str | Path) -> dict[str, float]:
    """`evaluate_tiny`'s metrics (AP50_tiny, ...) of `model` on a full-image annotation file."""
    from tinysm.engine.predict import predict
    from tinysm.evaluation import evaluate_tiny

    ground_truth = load_annotations(annotations, image_root=image_root)
    results = predict(model, DetectionDataset(ground_truth, transforms=EvalPreset()))
    return evaluate_tiny(ground_truth, results)


def evaluate_detector(model: torch.nn.Module, config: TrainConfig) -> dict[str, float]:
    """The metrics of `model` on the stage's configured eval set."""
    return evaluate_on(model, resolve(config.eval_annotations), resolve(config.eval_images))
