"""Reading and writing image files as uint8 3×H×W tensors.

Pillow rather than torchvision.io: the latter's decoders are deprecated from torchvision 0.29 on.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tinysm.io import atomic_path


def read_rgb_array(path: str | os.PathLike) -> np.ndarray:
    """The image at `path` as a uint8 RGB array of shape H×W×3 (for plotting)."""
    with Image.open(path) as image:
        return np.array(image.convert("RGB"))


def read_rgb(path: str | os.PathLike) -> torch.Tensor:
    """The image at `path` as a uint8 RGB tensor of shape 3×H×W."""
    return torch.from_numpy(read_rgb_array(path)).permute(2, 0, 1)


def write_jpeg(pixels: torch.Tensor, path: str | os.PathLike, quality: int = 95) -> Path:
    """Write a uint8 3×H×W tensor as JPEG, atomically."""
    array = pixels.permute(1, 2, 0).contiguous().numpy()
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="JPEG", quality=quality)
    return Path(path)
