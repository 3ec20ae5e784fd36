"""Monotone Scale Match (reference §5): knots and the map by hand, the defined failure cases, monotonicity,
and the Gaussian variant in log space.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from size_fixtures import coco_with_sizes, square
from tinysm.data.annotations import load_annotations
from tinysm.scale_match import (BinMap, GaussianScaleMatch, MonotoneScaleMatch, SizeDistribution, image_mean_sizes,
                                object_sizes, source_knots)

# target edges 0 | 10 | 20 | 40, C = [0.25, 0.75, 1.0]; source 1..8: q = [1, y[2], y[6], y[7]] = [1, 3, 7, 8]
MSM_TARGET = SizeDistribution(np.array([0.0, 10.0, 20.0, 40.0]), np.array([0.25, 0.5, 0.25]))


def test_msm_knots_and_mapping_by_hand():
    msm = MonotoneScaleMatch(MSM_TARGET, np.arange(8, 0, -1))
    np.testing.assert_array_equal(msm.knots, [1, 3, 7, 8])
    # at the knots: the edges; between: linear (2 -> 5, 5 -> 15, 7.5 -> 30)
    np.testing.assert_allclose(msm.map_size([1, 3, 7, 8, 2, 5, 7.5]), [0, 10, 20, 40, 5, 15, 30])
    # above the last knot the last bin's line goes on: 20 + (9 − 7)/(8 − 7)·20 = 60 (the reference crashes)
    assert msm.map_size(9.0) == pytest.approx(60.0)


def test_msm_zero_width_first_bin_maps_to_its_lower_edge():
    # source 2, 2, 2, 2, 5, 6, 7, 8: q = [2, y[2] = 2, y[6] = 7, 8]; the reference divides by zero at s = 2.
    msm = MonotoneScaleMatch(MSM_TARGET, [2, 2, 2, 2, 5, 6, 7, 8])
    np.testing.assert_array_equal(msm.knots, [2, 2, 7, 8])
    np.testing.assert_allclose(msm.map_size([1.5, 2.0, 4.5]), [0, 0, 15])


def test_msm_last_knot_is_raised_to_the_largest_source_size():
    # y = 1..10, C = [0.5, 0.85]: q = [1, y[5] = 6, y[int(8.5)] = 9], and q[K] = 9 < y[-1] is raised to 10.
    np.testing.assert_array_equal(source_knots(np.arange(10.0, 0.0, -1), np.array([0.5, 0.85])), [1, 6, 10])


def test_msm_scale_for_clamps_and_defaults():
    msm = MonotoneScaleMatch(MSM_TARGET, np.arange(1, 9), scale_range=(0.1, 1.0), default_scale=0.3)
    # s = 5 -> f = 15, c = 3, clamped to 1.0; s = 1.2 -> f = 0.2/2·10 = 1, c = 1/1.2
    assert msm.scale_for([square(0, 0, 5)]) == 1.0
    assert msm.scale_for([square(0, 0, 1.2)]) == pytest.approx(1 / 1.2, rel=1e-6)
    assert msm.scale_for(np.zeros((0, 4))) == 0.3


def test_msm_reads_source_sizes_from_a_coco_file(tmp_path):
    path = tmp_path / "source.json"
    path.write_text(json.dumps(coco_with_sizes(0, 5, 4, 3.0, 0.5)))
    from_file = MonotoneScaleMatch(MSM_TARGET, path)
    from_sizes = MonotoneScaleMatch(MSM_TARGET, object_sizes(load_annotations(path)))
    np.testing.assert_array_equal(from_file.knots, from_sizes.knots)


def points_outside_tolerance_windows(points: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Drop points in (q, q + 1e-6] of a knot: there the reference's slack picks the previous bin,
    whose line may overshoot the next one by up to 1e-6 · slope (reference §5 keeps that behaviour)."""
    inside = ((points[:, None] > knots[None, :]) & (points[:, None] <= knots[None, :] + 1e-6)).any(axis=1)
    return points[~inside]


@settings(max_examples=60, deadline=None)
@given(source=st.lists(st.floats(0.5, 500), min_size=2, max_size=60),
       target=st.lists(st.floats(0.5, 50), min_size=5, max_size=60, unique=True),
       points=st.lists(st.floats(0.01, 1000), min_size=2, max_size=40),
       bins=st.integers(3, 20))
def test_msm_map_is_monotone(source, target, points, bins):
    msm = MonotoneScaleMatch(SizeDistribution.from_sizes(target, bins=bins), source)
    s = np.sort(points_outside_tolerance_windows(np.array(points), msm.knots))
    mapped = msm.map_size(s)
    # Monotone up to floating-point rounding: on a flat stretch two sizes may differ in the last ulp.
    assert np.all(np.diff(mapped) >= -4 * np.abs(np.spacing(mapped[1:])))


def test_msm_tolerance_window_keeps_the_reference_quirk():
    # Knots [0.5, 1, 100] onto edges [5, 10, 11]: s = 1 + 1e-6 is still in bin 0 (slope 10) and maps to
    # 10.00001, while s = 1 + 1.5e-6 is in bin 1 (slope 1/99): 10.000000015. reference §5 keeps this.
    f = BinMap(np.array([0.5, 1.0, 100.0]), np.array([5.0, 10.0, 11.0]))
    np.testing.assert_allclose(f([1.0 + 1e-6, 1.0 + 1.5e-6]), [10.00001, 10 + 1.5e-6 / 99], rtol=1e-12)


def test_image_mean_sizes_for_the_gaussian_source():
    # image 0: sizes 2 and 8 -> geometric mean 4 (the crowd box is left out); image 1: 3; image 2: no box
    coco = load_annotations({
        "images": [{"id": i, "file_name": f"{i}.jpg", "width": 99, "height": 99} for i in range(3)],
        "annotations": [{"id": 0, "image_id": 0, "category_id": 1, "bbox": [0, 0, 1, 4]},
                        {"id": 1, "image_id": 0, "category_id": 1, "bbox": [0, 0, 8, 8]},
                        {"id": 2, "image_id": 0, "category_id": 1, "bbox": [0, 0, 50, 50], "iscrowd": 1},
                        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [0, 0, 3, 3]}]})
    np.testing.assert_allclose(image_mean_sizes(coco), [4, 3])
    gsm = GaussianScaleMatch(mu=1.0, sigma=0.5, source_sizes=coco, bins=4)
    np.testing.assert_allclose(gsm.knots[[0, -1]], [3, 4])


def test_gaussian_msm_maps_in_log_space():
    source = np.exp(np.random.RandomState(0).normal(4.0, 0.8, 5000))
    gsm = GaussianScaleMatch(mu=2.0, sigma=0.5, source_sizes=source, bins=10)
    edges, knots = gsm.target.edges, gsm.knots
    np.testing.assert_allclose(gsm.map_size(knots[1:-1]), edges[1:-1], rtol=1e-9)
    # the geometric midpoint of a source bin lands on the geometric midpoint of its target bin
    np.testing.assert_allclose(gsm.map_size(np.sqrt(knots[3] * knots[4])), np.sqrt(edges[3] * edges[4]))
    # equal-probability bins: the median source size maps to the target median e^2
    assert gsm.map_size(knots[5]) == pytest.approx(math.exp(2.0))


def test_gaussian_msm_onto_sizes_without_spread_maps_everything_to_that_size():
    # sigma 0 is the log-normal's limit, a point mass at exp(mu) = 8: every knot interval maps onto a
    # zero-width target bin, so f(s) = 8 for every source size (reference §5's zero-width rule).
    gsm = GaussianScaleMatch(mu=math.log(8.0), sigma=0.0, source_sizes=[10.0, 20.0, 40.0, 80.0], bins=4)
    np.testing.assert_allclose(gsm.map_size(np.array([10.0, 25.0, 80.0])), [8, 8, 8])
    with pytest.raises(ValueError, match="sigma >= 0"):
        GaussianScaleMatch(mu=1.0, sigma=-0.1, source_sizes=[10.0, 20.0], bins=4)
