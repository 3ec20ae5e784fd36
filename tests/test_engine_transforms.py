"""Augmentation presets (reference §4 step 4, §8) and the seeded sample wrapper of the engine's data."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from tinysm.data.transforms import EvalPreset, PretrainPreset, TrainPreset
from tinysm.engine.data import SeededSamples
from tinysm.scale_match import MonotoneScaleMatch, SizeDistribution


def sample(width=200, height=100):
    pixels = torch.arange(3 * height * width, dtype=torch.int64).reshape(3, height, width) % 256
    boxes = tv_tensors.BoundingBoxes(torch.tensor([[10.0, 20.0, 50.0, 60.0]]), format="XYXY",
                                     canvas_size=(height, width))
    target = {"boxes": boxes, "labels": torch.tensor([1]), "ignore": torch.tensor([False]), "image_id": 7}
    return tv_tensors.Image(pixels.to(torch.uint8)), target


def test_eval_preset_only_scales_pixels():
    image, target = sample()
    out, out_target = EvalPreset()(image, target)
    assert out.dtype == torch.float32 and out.shape == image.shape
    assert torch.equal((out * 255).round(), image.float())
    assert torch.equal(out_target["boxes"], target["boxes"])


def test_train_preset_flips_boxes_with_the_pixels():
    image, target = sample()
    seen = set()
    for seed in range(20):
        torch.manual_seed(seed)
        out, out_target = TrainPreset()(image, target)
        flipped = not torch.equal(out_target["boxes"], target["boxes"])
        seen.add(flipped)
        if flipped:  # x -> width - x: [10, 50] becomes [150, 190]
            assert out_target["boxes"].tolist() == [[150.0, 20.0, 190.0, 60.0]]
            assert torch.equal((out * 255).round(), image.flip(-1).float())
    assert seen == {True, False}


def test_pretrain_preset_scale_matches_then_flips():
    # MSM onto a target where every size is ~4 px: the 40 px box (41 with the +1 convention of
    # reference §4 step 1) maps to a size in [4, 4.1], so c = f(s)/s ≈ 0.1, the lower bound.
    target = SizeDistribution(np.array([4.0, 4.05, 4.1]), np.array([0.5, 0.5]))
    matcher = MonotoneScaleMatch(target, np.array([20.0, 41.0, 80.0]))
    image, boxes_target = sample()
    torch.manual_seed(0)
    out, out_target = PretrainPreset(matcher)(image, boxes_target)
    scale = matcher.scale_for(boxes_target["boxes"].numpy())
    assert out.dtype == torch.float32 and out.shape[-2:] == (round(100 * scale), round(200 * scale))
    assert out_target["boxes"].canvas_size == tuple(out.shape[-2:])
    assert out_target["boxes"][0, 3] - out_target["boxes"][0, 1] == pytest.approx(40 * scale, rel=0.02)


def test_seeded_samples_depend_on_seed_epoch_and_index_only():
    class Draws(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, index):
            return torch.rand(1).item()

    data = SeededSamples(Draws(), seed=3)
    first = [data[i] for i in range(4)]
    torch.manual_seed(99)  # the caller's stream does not matter, and is not advanced
    before = torch.get_rng_state()
    assert [data[i] for i in reversed(range(4))] == first[::-1]
    assert torch.equal(torch.get_rng_state(), before)
    data.set_epoch(1)
    assert [data[i] for i in range(4)] != first
    assert len(set(first)) == 4
