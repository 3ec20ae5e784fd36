"""Reading and writing image files as uint8 3×H×W tensors.

Pillow rather than torchvision.io: the latter's decoders are deprecated from torchvision 0.29 on.

Reading is checked (issue 12): a file that cannot be opened, is truncated or corrupt, has pixels
that cannot become 8-bit RGB without losing them, or is not the size the caller expects raises
`ImageReadError` naming the file and the problem, never a numpy traceback or silently wrong
pixels. The size is checked from the header Pillow reads when it opens the file, before decoding.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tinysm.io import atomic_path

# Modes Pillow converts to 8-bit RGB without loss of meaning (alpha is dropped, palettes expanded).
RGB_CONVERTIBLE_MODES = frozenset({"1", "L", "P", "LA", "PA", "La", "RGB", "RGBA", "RGBX", "RGBa", "CMYK",
                                   "YCbCr", "HSV"})
# 16-bit greyscale: Pillow's convert("RGB") clips every value above 255 (a 16-bit PNG turns white),
# so these are scaled here, keeping the high byte as Pillow itself does for 16-bit RGB PNGs.
SIXTEEN_BIT_GREY_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
# What a decoder may raise on a damaged file, besides OSError (truncated, broken data stream).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError)


class ImageReadError(ValueError):
    """An image file that cannot be used as it stands; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"image file {self.path} {problem}")


def read_rgb_array(path: str | os.PathLike, size: tuple[int, int] | None = None,
                   holds: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """The image at `path` as a uint8 RGB array of shape H×W×3.

    `size` (width, height): the file must be exactly that size. `holds` (x1, y1, x2, y2): the file
    must contain that region (a tile's corner). Both are checked before any pixel is decoded.
    """
    with open_checked(path, size, holds) as image:
        try:
            image.load()
        except _DECODE_ERRORS as err:
            raise ImageReadError(path, f"is truncated or corrupt: {err}") from None
        if image.mode in SIXTEEN_BIT_GREY_MODES:
            grey = (np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8)
            return np.repeat(grey[:, :, None], 3, axis=2)
        return np.array(image.convert("RGB"))


def size_problem(actual: tuple[int, int], size: tuple[int, int] | None,
                 holds: tuple[int, int, int, int] | None) -> str | None:
    """What is wrong with an image of `actual` (width, height) pixels, or None (see `read_rgb_array`)."""
    width, height = actual
    if size is not None and (width, height) != tuple(size):
        return (f"is {width}×{height} pixels, but the annotation says {size[0]}×{size[1]} "
                "(boxes and flips would not fit the pixels)")
    if holds is not None and (holds[2] > width or holds[3] > height):
        return (f"is {width}×{height} pixels, too small for the tile corner {list(holds)} "
                "(the tile would be cut short)")
    return None


def mode_problem(mode: str) -> str | None:
    """Why pixels of Pillow mode `mode` are refused, or None when they become 8-bit RGB faithfully."""
    if mode in RGB_CONVERTIBLE_MODES or mode in SIXTEEN_BIT_GREY_MODES:
        return None
    return (f"has pixel mode {mode!r}, which tinysm does not convert to 8-bit RGB (32-bit integer or float "
            "pixels have no fixed range); save it as 8-bit RGB, or 8/16-bit greyscale")


def read_rgb(path: str | os.PathLike, size: tuple[int, int] | None = None,
             holds: tuple[int, int, int, int] | None = None) -> torch.Tensor:
    """The image at `path` as a uint8 RGB tensor of shape 3×H×W (checks as `read_rgb_array`)."""
    return torch.from_numpy(read_rgb_array(path, size, holds)).permute(2, 0, 1)


def open_checked(path: str | os.PathLike, size: tuple[int, int] | None = None,
                 holds: tuple[int, int, int, int] | None = None) -> Image.Image:
    """The opened, not yet decoded image at `path`, its header checked against `size` and `holds`
    (see `read_rgb_array`) and its mode against what becomes 8-bit RGB; use it as a context manager.
    Opening reads the header only, so checking every file before any work costs little."""
    try:
        image = Image.open(path)
    except FileNotFoundError:
        raise ImageReadError(path, "does not exist") from None
    except Image.UnidentifiedImageError:
        raise ImageReadError(path, "is not an image Pillow can read (corrupt, empty or not an image format)") from None
    except OSError as err:
        raise ImageReadError(path, f"cannot be read ({err.strerror or err})") from None
    except (ValueError, Image.DecompressionBombError) as err:  # a NUL byte in the name; a decompression bomb
        raise ImageReadError(path, f"cannot be read ({err})") from None
    problem = size_problem(image.size, size, holds) or mode_problem(image.mode)
    if problem:
        image.close()
        raise ImageReadError(path, problem)
    return image


def write_jpeg(pixels: torch.Tensor, path: str | os.PathLike, quality: int = 95) -> Path:
    """Write a uint8 3×H×W tensor as JPEG, atomically."""
    array = pixels.permute(1, 2, 0).contiguous().numpy()
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="JPEG", quality=quality)
    return Path(path)
