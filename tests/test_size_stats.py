"""Size statistics and the boxes-only Scale Match of whole annotation sets (tinysm.experiments.size_stats)."""
from __future__ import annotations

import numpy as np
import pytest

from tinysm.data.annotations import load_annotations
from tinysm.scale_match import MonotoneScaleMatch, SizeDistribution
from tinysm.experiments.size_stats import box_size_columns, scale_annotations

COCO = {
    "images": [{"id": 0, "file_name": "a.jpg", "width": 200, "height": 100},
               {"id": 1, "file_name": "b.jpg", "width": 50, "height": 40}],
    "annotations": [{"id": 0, "image_id": 0, "category_id": 1, "bbox": [10, 20, 39, 19]},
                    {"id": 1, "image_id": 0, "category_id": 1, "bbox": [0, 0, 90, 90], "iscrowd": 1},
                    {"id": 2, "image_id": 0, "category_id": 1, "bbox": [100, 50, 2, 2]}],
}


def test_box_size_columns_by_hand():
    columns = box_size_columns(load_annotations(COCO))
    # counted boxes 39×19 and 2×2 in a 200×100 image (the crowd box is left out)
    np.testing.assert_allclose(columns["size"], [np.sqrt(741), 2])
    np.testing.assert_allclose(columns["relative_size"], [np.sqrt(741 / 20000), 2 / np.sqrt(20000)])
    np.testing.assert_allclose(columns["aspect_ratio"], [39 / 19, 1])


def test_scale_annotations_applies_the_transform_to_boxes_and_image_sizes():
    # One bin, knots [1, 100] onto edges [0.25, 25]: f(s) = 0.25 + (s − 1)/99 · 24.75 = s/4, so c = 1/4
    # for image 0 (200×100 -> 50×25); image 1 has no box and gets the default 1/4 too.
    msm = MonotoneScaleMatch(SizeDistribution(np.array([0.25, 25.0]), np.array([1.0])), [1.0, 100.0])
    scaled = scale_annotations(load_annotations(COCO), msm, progress=False)
    assert [(im.width, im.height) for im in scaled.images] == [(50, 25), (12, 10)]  # 12.5 -> 12 (half to even)
    # the 2×2 box becomes 0.5×0.5 and is dropped; the crowd box is left out before matching
    assert [a.id for a in scaled.annotations] == [0]
    assert scaled.annotations[0].bbox == pytest.approx((2.5, 5.0, 9.75, 4.75))
