"""Where torchvision and the reference (TOV_mmdetection, mmdet 2.13; SPEC §7.1) differ, the built
detectors follow the reference: one test per difference, each with answers worked out by hand."""
from __future__ import annotations

import pytest
import torch
from torchvision.ops import roi_align

from model_support import one_thread, small_detector  # noqa: F401 (one_thread: autouse fixture)

DETECTORS = ["faster_fpn", "adaptive_retinanet"]


def test_roi_align_samples_adaptively_by_default():
    pooler = small_detector("faster_fpn").roi_heads.box_roi_pool
    assert pooler.sampling_ratio == 0  # mmcv's RoIAlign(sampling_ratio=0)
    features = {str(k): torch.rand(1, 4, 64 // 2 ** k, 64 // 2 ** k) for k in range(4)}
    box = torch.tensor([[10.0, 20.0, 110.0, 70.0]])  # √area 71 -> P2 (stride 4): 25 × 12.5 cells, 7×7 bins
    rois = torch.cat([torch.zeros(1, 1), box], 1)
    pooled = pooler(features, [box], [(256, 256)])
    # 0: ceil(25 / 7) = 4 samples across × ceil(12.5 / 7) = 2 down each bin, not a fixed 2 × 2
    torch.testing.assert_close(pooled, roi_align(features["0"], rois, 7, 0.25, 0, aligned=True))
    assert not torch.allclose(pooled, roi_align(features["0"], rois, 7, 0.25, 2, aligned=True))
