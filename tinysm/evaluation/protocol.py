"""The constants of the TinyPerson evaluation protocol (reference §6), in one place.

Ranges are (name, low, high), both ends inclusive. AP ranges are on areas (reference §6.1), MR setups
on sizes √area (reference §6.2).
"""
from __future__ import annotations

import numpy as np

IOU_THRESHOLDS = (0.25, 0.5, 0.75)

AP_RANGES: tuple[tuple[str, float, float], ...] = (
    ("all", 1.0, 1e10), ("tiny", 1.0, 400.0), ("tiny1", 1.0, 64.0), ("tiny2", 64.0, 144.0),
    ("tiny3", 144.0, 400.0), ("small", 400.0, 1024.0), ("reasonable", 1024.0, 1e10),
)
MR_SETUPS: tuple[tuple[str, float, float], ...] = (
    ("tiny1", 2.0, 8.0), ("tiny2", 8.0, 12.0), ("tiny3", 12.0, 20.0), ("tiny", 2.0, 20.0),
    ("small", 20.0, 32.0), ("all", -1.0, 1e10),
)
# Order of the columns in printed tables and of the keys in the flat dict (reference §6.4).
RANGE_ORDER = ("tiny1", "tiny2", "tiny3", "tiny", "small", "all", "reasonable")

MR_MAX_DETS = 1000          # reference §6.2: MR always keeps the top 1000 per image
MR_SIZE_MARGIN = 1.25       # reference §6.2: detections kept when √(wh) in [lo/1.25, hi*1.25)
MR_FALLBACK_THRESHOLD = 0.5  # reference §6.2: the IoD-from-IoU rule for unmatched detections

# reference §6.1: 101 recall points, np.linspace (i*0.01 in floating point, not i/100).
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
# reference §6.2: 9 FPPI points, exp(ln 0.01 + i*ln(100)/8). Built with np.arange like the reference,
# whose last bits differ from the closed form: 0.1 and 1 come out a few ulps high, which is why an
# FPPI of exactly 0.1 or 1 counts as below the point.
FPPI_POINTS = np.exp(np.arange(np.log(0.01), np.log(1.0) + 1e-10, np.log(1.0 / 0.01) / 8))
# The reference's "iou = min(t, 1 - 1e-10)": a threshold of 1 still accepts a near-perfect overlap.
MAX_THRESHOLD = 1 - 1e-10


def metric_key(kind: str, iou: float, range_name: str) -> str:
    """`AP50_tiny`-style key of reference §6.4."""
    return f"{kind}{round(iou * 100):d}_{range_name}"
