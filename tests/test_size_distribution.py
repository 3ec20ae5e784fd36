"""The rectified histogram of reference §3 (`SizeDistribution`): edges and probs by hand, invariants.

Expected values are worked out by hand in the comments.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinysm.data.annotations import load_annotations
from tinysm.scale_match import SizeDistribution, object_sizes

def test_rectified_histogram_by_hand():
    # N = 10, e = 0.5: lo = int(2.5) = 2, hi = int(7.5) = 7. Middle x[2:7] = 3..7 in 2 equal bins
    # [3, 5) -> {3, 4}, [5, 7] -> {5, 6, 7}. counts [2, 2, 3, 3] over N; edges [1, 3, 5, 7, 10].
    hist = SizeDistribution.from_sizes(np.arange(10, 0, -1), bins=4, tail_rate=0.5)
    np.testing.assert_array_equal(hist.edges, [1, 3, 5, 7, 10])
    np.testing.assert_array_equal(hist.probs, [0.2, 0.2, 0.3, 0.3])
    np.testing.assert_array_equal(hist.cdf, np.cumsum([0.2, 0.2, 0.3, 0.3]))


def test_default_tail_rate_is_two_over_bins_and_drops_non_positive_sizes():
    # K = 4 -> e = 0.5 as above; 0 and -3 are dropped first (reference §3), leaving the same 10 sizes.
    hist = SizeDistribution.from_sizes([0, -3, *range(1, 11)], bins=4)
    np.testing.assert_array_equal(hist.edges, [1, 3, 5, 7, 10])
    np.testing.assert_array_equal(hist.probs, [0.2, 0.2, 0.3, 0.3])


def test_truncating_tail_counts():
    # N = 7, e = 0.5: lo = int(1.75) = 1, hi = int(5.25) = 5; the middle {2, 4, 8, 16} is one bin.
    hist = SizeDistribution.from_sizes([1, 2, 4, 8, 16, 32, 64], bins=3, tail_rate=0.5)
    np.testing.assert_array_equal(hist.edges, [1, 2, 16, 64])
    np.testing.assert_allclose(hist.probs, [1 / 7, 4 / 7, 2 / 7])


def test_zero_tail_rate_is_plain_histogram_and_log_bins_exponentiate():
    # ln sizes 0, .5, 1.2, 2.1, 3.9, 4 into 4 bins of width 1: counts 2, 1, 1, 2; edges e^0 … e^4.
    sizes = np.exp([0.0, 0.5, 1.2, 2.1, 3.9, 4.0])
    hist = SizeDistribution.from_sizes(sizes, bins=4, tail_rate=0, log_bins=True)
    np.testing.assert_allclose(hist.edges, np.exp([0, 1, 2, 3, 4]))
    np.testing.assert_allclose(hist.probs, np.array([2, 1, 1, 2]) / 6)
    plain = SizeDistribution.from_sizes([1, 2, 3, 9], bins=2, tail_rate=0)
    np.testing.assert_array_equal(plain.edges, [1, 5, 9])
    np.testing.assert_array_equal(plain.probs, [0.75, 0.25])


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.floats(0.5, 500), min_size=10, max_size=300, unique=True), bins=st.integers(3, 40),
       tail_rate=st.sampled_from([None, 0.0, 0.02, 0.1, 0.3]))
def test_histogram_invariants(sizes, bins, tail_rate):
    hist = SizeDistribution.from_sizes(sizes, bins=bins, tail_rate=tail_rate)
    n, e = len(sizes), 2 / bins if tail_rate is None else tail_rate
    assert len(hist.edges) == bins + 1 and hist.probs.sum() == pytest.approx(1.0)
    assert hist.edges[0] == min(sizes) and hist.edges[-1] == max(sizes)
    assert np.all(np.diff(hist.edges) >= 0)
    counts = hist.probs * n
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)  # whole boxes per bin
    if e > 0:  # tail bins hold exactly the truncated counts of reference §3
        assert round(counts[0]) == int(n * e / 2) and round(counts[-1]) == n - int(n * (1 - e / 2))


def test_all_equal_middle_sizes_follow_numpys_widened_range():
    # Ten sizes of 4, K = 5, e = 0.2: lo = 1, hi = 9. numpy spreads the middle eight (all 4) over
    # [3.5, 4.5] in 3 bins of width 1/3, so the tail edges (both 4) lie inside that range and both
    # tail bins run backwards: [4 -> 3.5] and [4.5 -> 4].
    hist = SizeDistribution.from_sizes([4.0] * 10, bins=5, tail_rate=0.2)
    np.testing.assert_allclose(hist.edges, [4, 3.5, 3.5 + 1 / 3, 3.5 + 2 / 3, 4.5, 4])
    np.testing.assert_array_equal(hist.probs, [0.1, 0, 0.8, 0, 0.1])
    # Every draw lies between its bin's two edges: 10% in [3.5, 4], 80% in [3.83, 4.17], 10% in [4, 4.5];
    # within 1/6 of 4 fall the whole middle bin and a third of each tail bin, 0.8 + 2 · 0.1 / 3 = 0.867.
    draws = hist.sample(np.random.RandomState(0), 2000)
    assert draws.min() >= 3.5 and draws.max() <= 4.5
    assert 0.84 < np.mean(np.abs(draws - 4) <= 1 / 6) < 0.89
    np.testing.assert_allclose(hist.quantile([0.0, 0.1, 0.5, 1.0]), [4, 3.5, 4, 4])


def test_edges_out_of_order_between_the_tails_are_refused():
    with pytest.raises(ValueError, match="non-decreasing"):
        SizeDistribution(np.array([1.0, 5.0, 3.0, 10.0]), np.array([0.2, 0.3, 0.5]))
    with pytest.raises(ValueError, match="non-decreasing"):
        SizeDistribution(np.array([9.0, 3.0, 4.0, 2.0]), np.array([0.2, 0.3, 0.5]))


def test_from_coco_drops_crowd_and_ignore_but_keeps_uncertain():
    boxes = [([0, 0, 1, 1], {}), ([0, 0, 2, 2], {"uncertain": True}), ([0, 0, 3, 3], {}),
             ([0, 0, 100, 100], {"iscrowd": 1}), ([0, 0, 50, 50], {"ignore": True}), ([0, 0, 4, 9], {})]
    coco = {"images": [{"id": 0, "file_name": "a.jpg", "width": 200, "height": 200}],
            "annotations": [{"id": i, "image_id": 0, "category_id": 1, "bbox": bbox, **flags}
                            for i, (bbox, flags) in enumerate(boxes)]}
    np.testing.assert_array_equal(object_sizes(load_annotations(coco)), [1, 2, 3, 6])
    # sizes 1, 2, 3, 6 with 2 plain bins: [1, 3.5) holds 3, [3.5, 6] holds 1.
    hist = SizeDistribution.from_coco(load_annotations(coco), bins=2, tail_rate=0)
    np.testing.assert_array_equal(hist.edges, [1, 3.5, 6])
    np.testing.assert_array_equal(hist.probs, [0.75, 0.25])


def test_too_few_sizes_is_a_clear_error():
    coco = load_annotations({"images": [{"id": 0, "file_name": "a.jpg", "width": 9, "height": 9}],
                             "annotations": [{"id": 0, "image_id": 0, "category_id": 1, "bbox": [0, 0, 2, 2]}]})
    with pytest.raises(ValueError, match=r"<in memory>: 1 positive sizes are too few"):
        SizeDistribution.from_coco(coco)


def test_quantile_inverts_the_piecewise_linear_cdf():
    hist = SizeDistribution(np.array([2.0, 4.0, 8.0, 16.0]), np.array([0.25, 0.5, 0.25]))
    # q = 0.5 lies halfway through bin 1 (C from 0.25 to 0.75) -> 6; q = 0.125 -> 3; ends -> 2, 16.
    np.testing.assert_allclose(hist.quantile([0.0, 0.125, 0.25, 0.5, 0.875, 1.0]), [2, 3, 4, 6, 12, 16])


def test_log_normal_target_has_equal_bins_and_median_at_exp_mu():
    dist = SizeDistribution.log_normal(mu=2.0, sigma=0.5, bins=10, coverage=0.998)
    np.testing.assert_allclose(dist.probs, 0.1)
    assert dist.edges[5] == pytest.approx(math.exp(2.0))
    # the ends are the 0.1% and 99.9% quantiles: exp(2 ± 0.5 · 3.0902)
    np.testing.assert_allclose(dist.edges[[0, -1]], np.exp(2.0 + 0.5 * np.array([-3.090232, 3.090232])), rtol=1e-6)
