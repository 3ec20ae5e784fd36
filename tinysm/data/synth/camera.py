"""The camera's last word: JPEG compression with 4:2:0 chroma, so frames look like video stills.

(The lens blur is the painter's edge softness, see `raster.paint`: blurring a whole 1920×1080
frame would cost more than drawing it.)
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image


def encode_frame(canvas: np.ndarray, rng: np.random.Generator, quality: tuple[int, int] = (65, 90)) -> bytes:
    """JPEG bytes of the H×W×3 uint8 canvas at a random quality."""
    pixels = Image.fromarray(canvas, mode="RGB")
    buffer = io.BytesIO()
    pixels.save(buffer, format="JPEG", quality=int(rng.integers(quality[0], quality[1] + 1)), subsampling=2)
    return buffer.getvalue()
