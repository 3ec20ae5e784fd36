"""A toy detection set for the engine tests: small images with bright boxes, written to disk."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from tinysm.data.images import write_jpeg
from tinysm.engine.config import TrainConfig, train_config_from_mapping


def write_toy_dataset(root: Path, images: int = 8, size: tuple[int, int] = (96, 64),
                      category_ids: tuple[int, ...] = (1,), box_sides: tuple[int, int] = (6, 16),
                      seed: int = 0) -> Path:
    """`images` JPEGs (width, height = `size`) with 1–3 bright rectangles each, sides drawn from
    [box_sides[0], box_sides[1]); returns the COCO file."""
    generator = torch.Generator().manual_seed(seed)
    width, height = size
    (root / "images").mkdir(parents=True, exist_ok=True)
    records, annotations = [], []
    for image_id in range(images):
        pixels = torch.randint(0, 60, (3, height, width), dtype=torch.uint8, generator=generator)
        for _ in range(int(torch.randint(1, 4, (), generator=generator))):
            w, h = (int(v) for v in torch.randint(*box_sides, (2,), generator=generator))
            x = int(torch.randint(0, width - w, (), generator=generator))
            y = int(torch.randint(0, height - h, (), generator=generator))
            pixels[:, y:y + h, x:x + w] = 230
            category = category_ids[len(annotations) % len(category_ids)]
            annotations.append({"id": len(annotations), "image_id": image_id, "category_id": category,
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
        name = f"{image_id:03d}.jpg"
        write_jpeg(pixels, root / "images" / name)
        records.append({"id": image_id, "file_name": name, "width": width, "height": height})
    path = root / "annotations.json"
    categories = [{"id": i, "name": f"class{i}"} for i in category_ids]
    path.write_text(json.dumps({"images": records, "annotations": annotations, "categories": categories}))
    return path


def toy_config(data: Path, out_dir: Path, **overrides: Any) -> TrainConfig:
    """A CPU TrainConfig over a toy set written by `write_toy_dataset` into `data`."""
    values: dict[str, Any] = {
        "detector": "adaptive_retinanet", "backbone": "resnet18", "train_annotations": str(data / "annotations.json"),
        "train_images": str(data / "images"), "out_dir": str(out_dir), "device": "cpu", "workers": 0,
        "batch_size": 2, "epochs": 2, "milestones": [1], "warmup_iters": 2, "log_every": 1,
        "lr_per_image": 0.005,
    }
    return train_config_from_mapping({**values, **overrides}, "engine test config")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread per test process: on a loaded machine OpenMP threads spin-wait for each
    other and a step takes several times longer; results do not depend on it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
