"""Shared by the detector tests: small CPU detectors and a single-threaded torch."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from tinysm.models import build_detector

SMALL = {"backbone": "resnet18", "fpn_channels": 32}  # fast on a CPU; every other setting is the paper's


def small_detector(name: str, num_classes: int = 1, seed: int = 0, **overrides) -> nn.Module:
    """A resnet18 detector with narrow FPN, seeded for reproducible weights."""
    torch.manual_seed(seed)
    return build_detector(name, num_classes, **{**SMALL, **overrides})


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: extra threads only spin on a shared CPU (up to 10× slower under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
