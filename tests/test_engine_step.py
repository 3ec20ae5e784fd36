"""One optimiser step of `train_one_epoch`: SGD on the summed loss terms, optional clipping at a
max-norm (the "-c" runs, reference §7), the LR of the schedule, and what each step reports."""
from __future__ import annotations

import pytest
import torch

from tinysm.engine.config import train_config_from_mapping
from tinysm.engine.distributed import DistributedContext
from tinysm.engine.train import build_training_state, train_one_epoch

CPU = DistributedContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


class QuadraticDetector(torch.nn.Module):
    """Two loss terms with a known gradient: d/dw [3·w·x + 4·w·x] summed over images = 7·Σx."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(2))

    def forward(self, images, targets):
        x = torch.stack([image.flatten()[:2] for image in images]).sum(0)
        return {"term_a": 3 * (self.weight * x).sum(), "term_b": 4 * (self.weight * x).sum()}


def one_step(clip_grad_norm):
    config = train_config_from_mapping({"detector": "faster_fpn", "train_annotations": "a.json",
                                        "train_images": "img", "out_dir": "runs/x", "batch_size": 2,
                                        "lr_per_image": 0.05, "weight_decay": 0.0, "warmup_iters": 2,
                                        "warmup_ratio": 0.5})
    model = QuadraticDetector()
    state = build_training_state(model, config, CPU, iters_per_epoch=10)
    images = [torch.full((3, 2, 2), 1.0), torch.full((3, 2, 2), 1.0)]
    targets = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}] * 2
    records = []
    train_one_epoch(model, state, [(images, targets)], CPU, stop_at=1, clip_grad_norm=clip_grad_norm,
                    after_step=records.append)
    return model.weight.detach(), records, state


def test_plain_sgd_step_on_the_summed_loss():
    weight, records, state = one_step(clip_grad_norm=None)
    # gradient 7·(1 + 1) = 14 per coordinate; LR 0.05 × 2 images × warm-up 0.5 = 0.05
    assert weight.tolist() == pytest.approx([-0.05 * 14, -0.05 * 14])
    (record,) = records
    assert record.lr == pytest.approx(0.05)
    assert record.losses == {"loss": 0.0, "term_a": 0.0, "term_b": 0.0}  # evaluated at w = 0
    assert record.images == 2 and state.iteration == 1


def test_clipping_caps_the_gradient_norm():
    weight, _, _ = one_step(clip_grad_norm=1.0)
    # ‖(14, 14)‖ = 14·√2 -> scaled to norm 1: each coordinate 1/√2
    assert weight.tolist() == pytest.approx([-0.05 / 2 ** 0.5, -0.05 / 2 ** 0.5])
