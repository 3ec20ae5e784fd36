"""Scale Match, SM (reference §4): per-image factors, the transform, random streams, the matched distribution.

Expected values are worked out by hand in the comments, or computed here independently of
tinysm from the rules of docs/reference.md.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torchvision import tv_tensors
from torchvision.transforms import v2

from size_fixtures import square
from tinysm.scale_match import ScaleMatch, SizeDistribution, image_mean_size


class ScriptedUniforms:
    """An `rng` whose uniform() returns the given numbers in order, counting what was drawn."""

    def __init__(self, values):
        self.values, self.drawn = list(values), 0

    def uniform(self, low=0.0, high=1.0, size=None):
        assert size is None
        self.drawn += 1
        return self.values[self.drawn - 1]


# edges 2 | 4 | 8 | 16 with probs 1/4, 1/2, 1/4: C = [0.25, 0.75, 1.0]
TARGET = SizeDistribution(np.array([2.0, 4.0, 8.0, 16.0]), np.array([0.25, 0.5, 0.25]))


# ----------------------------------------------------------------------------- reference §4

def test_sample_matches_the_scalar_draw_rule():
    # Per draw: r picks the first bin with r <= C[k] + 1e-6, then u the place in [edges[k], edges[k+1]).
    reference = np.random.RandomState(7)
    expected = []
    for _ in range(200):
        r, u = reference.uniform(), reference.uniform()
        k = int(np.nonzero(r <= np.cumsum(TARGET.probs) + 1e-6)[0][0])
        expected.append(TARGET.edges[k] + u * (TARGET.edges[k + 1] - TARGET.edges[k]))
    np.testing.assert_array_equal(TARGET.sample(np.random.RandomState(7), 200), expected)
    one_by_one = np.random.RandomState(7)
    assert [TARGET.draw(one_by_one) for _ in range(200)] == expected


def test_mean_size_is_float32_geometric_mean_with_plus_one_extent():
    # extents 4×9 and 1×1 -> sizes 6 and 1 -> geometric mean √6; the inverted box (x2 < x1 − 1) is left out.
    boxes = [[0, 0, 3, 8], [5, 5, 5, 5], [10, 0, 5, 3]]
    assert image_mean_size(boxes) == pytest.approx(math.sqrt(6), rel=1e-6)
    assert image_mean_size(boxes) == float(np.float32(image_mean_size(boxes)))
    assert image_mean_size(np.zeros((0, 4))) is None


def test_sm_factor_by_hand():
    # s = 40. r = 0.9 -> bin 2 [8, 16), u = 0.5 -> ŝ = 12, c = 0.3 (accepted at the first try).
    rng = ScriptedUniforms([0.9, 0.5])
    assert ScaleMatch(TARGET, rng=rng).scale_for([square(0, 0, 40)]) == pytest.approx(0.3)
    assert rng.drawn == 2
    # r = 0.25 + 5e-7 still falls in bin 0 (the 1e-6 slack): ŝ = 2 + 0.5·2 = 3, c = 0.075 is rejected;
    # then r = 0.5 -> bin 1, u = 0.25 -> ŝ = 5, c = 0.125 accepted at the second try.
    rng = ScriptedUniforms([0.25 + 5e-7, 0.5, 0.5, 0.25])
    assert ScaleMatch(TARGET, rng=rng).scale_for([square(0, 0, 40)]) == pytest.approx(0.125)
    assert rng.drawn == 4


def test_sm_clamps_the_last_factor_after_max_tries_and_draws_nothing_without_boxes():
    # s = 40, ŝ = 3 every time: c = 0.075 fails 5 tries (10 draws), then is clamped to 0.1.
    rng = ScriptedUniforms([0.1, 0.5] * 6)
    assert ScaleMatch(TARGET, rng=rng).scale_for([square(0, 0, 40)]) == 0.1
    assert rng.drawn == 10
    # s = 2: ŝ = 12 gives c = 6, too large: clamped to 1.0 after 3 tries when max_tries = 3.
    rng = ScriptedUniforms([0.9, 0.5] * 3)
    assert ScaleMatch(TARGET, max_tries=3, rng=rng).scale_for([square(0, 0, 2)]) == 1.0
    assert rng.drawn == 6
    rng = ScriptedUniforms([])
    assert ScaleMatch(TARGET, default_scale=0.3, rng=rng).scale_for(np.zeros((0, 4))) == 0.3
    assert rng.drawn == 0


def reference_mean_size(boxes) -> np.float32 | None:
    """reference §4 step 1 as the reference computes it: float32 numpy, +1-pixel extents."""
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    sizes = np.sqrt((b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1))
    sizes = sizes[sizes > 0]
    return np.exp(np.log(sizes).mean()) if len(sizes) else None


def reference_sm_factors(edges, probs, images, seed, low=0.1, high=1.0, tries=5, default=0.25):
    """reference §4 steps 1–2 for images given by their boxes, written out independently of tinysm."""
    rng, cdf, factors = np.random.RandomState(seed), np.cumsum(probs), []
    for boxes in images:
        s = reference_mean_size(boxes)
        if s is None:
            factors.append(default)
            continue
        for _ in range(tries):
            k = int(np.nonzero(rng.uniform() <= cdf + 1e-6)[0][0])
            c = (edges[k] + rng.uniform() * (edges[k + 1] - edges[k])) / s
            if low < c < high:
                break
        factors.append(min(max(c, low), high))
    return factors


def test_sm_factors_follow_a_seeded_randomstate_draw_for_draw():
    target = SizeDistribution.from_sizes(np.exp(np.random.RandomState(0).normal(2.0, 0.5, 3000)))
    images = [[square(0, 0, 40)], [square(0, 0, 1000)], [], [square(0, 0, 3), square(9, 9, 12)],
              [square(0, 0, 25)] * 3, [square(5, 5, 60), square(0, 0, 7)]]
    # geometric means by hand: 40, 1000, none, √(3·12) = 6, 25, √(60·7)
    for boxes, by_hand in zip(images, [40, 1000, None, 6, 25, math.sqrt(420)]):
        assert image_mean_size(boxes) == (None if by_hand is None else pytest.approx(by_hand, rel=1e-6))
    sm = ScaleMatch(target, rng=np.random.RandomState(3))
    got = [sm.scale_for(boxes) for boxes in images]
    assert got == reference_sm_factors(target.edges, target.probs, images, 3)


def test_sm_transform_resizes_image_and_boxes_per_axis_and_drops_tiny_boxes():
    # Extents 40×40 and 3×3: s = √(40·3) ≈ 10.95. r = 0.1 picks bin 0 [2, 4); u is chosen so that
    # ŝ = 0.25·s, i.e. c ≈ 0.25: 100×300 -> 25×75.
    boxes = [[0.0, 0.0, 39.0, 39.0], [50.0, 2.0, 52.0, 4.0]]
    u = (0.25 * image_mean_size(boxes) - 2.0) / 2.0
    image = tv_tensors.Image(torch.randint(0, 256, (3, 100, 300), dtype=torch.uint8))
    target = {"boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(100, 300)),
              "labels": torch.tensor([1, 7]), "ignore": torch.tensor([False, True]), "image_id": 42}
    out_image, out = ScaleMatch(TARGET, rng=ScriptedUniforms([0.1, u]))(image, target)
    assert tuple(out_image.shape) == (3, 25, 75) and isinstance(out_image, tv_tensors.Image)
    assert out["boxes"].canvas_size == (25, 75)
    # The 2-pixel box becomes 0.5 wide: 0.5 + 1 < 2 -> dropped, with its label and ignore flag.
    np.testing.assert_allclose(out["boxes"].numpy(), [[0, 0, 9.75, 9.75]], rtol=1e-6)
    assert out["labels"].tolist() == [1] and out["ignore"].tolist() == [False] and out["image_id"] == 42


def test_new_size_rounds_half_to_even():
    # Step 3 alone (the antialiased rule keeps its size). No boxes: the default 0.25 exactly.
    # 14×18 -> 3.5×4.5 -> 4×4; 10×30 -> 2.5×7.5 -> 2×8.
    sm = ScaleMatch(TARGET, rng=ScriptedUniforms([]), resize="antialiased")
    assert sm.match_boxes(np.zeros((0, 4)), (14, 18)).canvas_size == (4, 4)
    assert sm.match_boxes(np.zeros((0, 4)), (10, 30)).canvas_size == (2, 8)


def test_reference_pixels_take_step_3s_size_through_mmcvs_keep_ratio_rule():
    """reference §4 "Pixels": f = min(max(H', W') / max(H, W), min(H', W') / min(H, W)), then
    int(H·f + 0.5) × int(W·f + 0.5). 14×18 -> step 3's 4×4: f = min(4/18, 4/14) = 2/9, so
    int(3.61) × int(4.5) = 3×4. 10×30 -> 2×8: f = min(8/30, 2/10) = 0.2, so int(2.5) × int(6.5) = 2×6."""
    sm = ScaleMatch(TARGET, rng=ScriptedUniforms([]))  # "reference" is the default
    assert sm.match_boxes(np.zeros((0, 4)), (14, 18)).canvas_size == (3, 4)
    assert sm.match_boxes(np.zeros((0, 4)), (10, 30)).canvas_size == (2, 6)
    # Boxes follow the final size per axis and are clipped to it: c = 0.2 takes 10×30 to 2×6 (x and y
    # by 0.2); the second box's x2 = 8 is clipped to 6.
    sm.scale_for = lambda boxes: 0.2
    matched = sm.match_boxes(np.array([[0.0, 0.0, 29.0, 9.0], [5.0, 0.0, 40.0, 12.0]]), (10, 30))
    np.testing.assert_allclose(matched.boxes, [[0.0, 0.0, 5.8, 1.8], [1.0, 0.0, 6.0, 2.0]], rtol=1e-6)


def test_reference_pixels_are_bilinear_without_antialiasing():
    """A 4×4 image halved: bilinear without antialiasing samples at source (0.5, 0.5), i.e. the mean
    of the top-left 2×2 block; the antialiased resize filters wider and gives another value."""
    values = torch.tensor([[0, 40, 80, 120], [40, 80, 120, 160], [80, 120, 160, 200], [120, 160, 200, 240]],
                          dtype=torch.uint8)
    image = tv_tensors.Image(values.expand(3, 4, 4).clone())
    target = {"boxes": tv_tensors.BoundingBoxes(torch.zeros((0, 4)), format="XYXY", canvas_size=(4, 4)),
              "labels": torch.zeros(0, dtype=torch.int64), "image_id": 0}
    half = SizeDistribution(np.array([0.25, 0.75]), np.array([1.0]))  # unused: no boxes, default scale
    reference, _ = ScaleMatch(half, default_scale=0.5)(image, target)
    assert reference[0].tolist() == [[40, 120], [120, 200]]  # (0+40+40+80)/4, (80+120+120+160)/4, ...
    antialiased, _ = ScaleMatch(half, default_scale=0.5, resize="antialiased")(image, target)
    assert antialiased[0].tolist() != reference[0].tolist()


def test_sm_falls_back_to_default_scale_when_every_box_is_dropped():
    # A 10-wide, 1-tall box: any c < 1 drops it (height extent c·1 + 1 < 2); the default 0.25 drops it
    # too, so the image is resized by 0.25 and keeps no box: 40×80 -> 10×20.
    image = tv_tensors.Image(torch.zeros((3, 40, 80), dtype=torch.uint8))
    target = {"boxes": tv_tensors.BoundingBoxes([[0, 0, 10, 1]], format="XYXY", canvas_size=(40, 80)),
              "labels": torch.tensor([3]), "ignore": torch.tensor([False]), "image_id": 0}
    out_image, out = ScaleMatch(TARGET, rng=ScriptedUniforms([0.5, 0.0]))(image, target)
    assert tuple(out_image.shape[-2:]) == (10, 20) and out["boxes"].canvas_size == (10, 20)
    assert out["boxes"].shape == (0, 4) and out["labels"].shape == (0,)


def test_sm_fallback_keeps_boxes_that_survive_the_default_scale():
    # Box (0, 0, 4, 99): extents 5×100, s = √500 ≈ 22.4. r = 0.1, u = 0.5: ŝ = 3, c ≈ 0.134, and the
    # width 4·0.13 + 1 < 2 drops the box; the default 0.25 keeps it (4·0.25 + 1 = 2):
    # image 200×100 -> 50×25, box -> (0, 0, 1, 24.75).
    matched = ScaleMatch(TARGET, rng=ScriptedUniforms([0.1, 0.5])).match_boxes([[0, 0, 4, 99]], (200, 100))
    assert matched.canvas_size == (50, 25) and matched.scale == 0.25
    np.testing.assert_allclose(matched.boxes, [[0, 0, 1, 24.75]])


def test_sm_composes_with_torchvision_v2_and_flip_does_not_draw_from_sm_rng():
    rng = np.random.RandomState(5)
    pipeline = v2.Compose([ScaleMatch(TARGET, scale_range=(0.01, 1.0), rng=rng), v2.RandomHorizontalFlip(p=1.0)])
    image = tv_tensors.Image(torch.zeros((3, 100, 200), dtype=torch.uint8))
    target = {"boxes": tv_tensors.BoundingBoxes([[10, 10, 49, 49]], format="XYXY", canvas_size=(100, 200)),
              "labels": torch.tensor([1]), "image_id": 0}
    out_image, out = pipeline(image, target)
    expected_c = reference_sm_factors(TARGET.edges, TARGET.probs, [[[10, 10, 49, 49]]], 5, low=0.01)[0]
    step3 = round(expected_c * 100), round(expected_c * 200)
    f = min(max(step3) / 200, min(step3) / 100)  # mmcv's keep-ratio rule (reference §4 "Pixels")
    height, width = int(100 * f + 0.5), int(200 * f + 0.5)
    assert tuple(out_image.shape[-2:]) == (height, width)
    # flipped: x1' = W − x2·(W/200)
    assert out["boxes"][0, 0].item() == pytest.approx(width - 49 * width / 200, rel=1e-5)
    fresh = np.random.RandomState(5)
    fresh.uniform(size=2)  # one try of SM; the flip drew from torch, not from `rng`
    assert rng.uniform() == fresh.uniform()


def test_automatic_stream_follows_torch_seed_per_process():
    boxes = [square(0, 0, 40)]
    sm = ScaleMatch(TARGET)
    torch.manual_seed(11)
    first = [sm.scale_for(boxes) for _ in range(5)]
    assert ScaleMatch(TARGET).scale_for(boxes) == first[0]  # same torch seed, same stream in a new copy
    torch.manual_seed(12)
    assert [sm.scale_for(boxes) for _ in range(5)] != first
    torch.manual_seed(11)
    assert [sm.scale_for(boxes) for _ in range(5)] == first  # reseeded when the torch seed changed
    sm.reseed(4)
    assert sm.scale_for(boxes) == reference_sm_factors(TARGET.edges, TARGET.probs, [boxes], 4)[0]


class FactorsDataset(torch.utils.data.Dataset):
    """Three SM factors per item, drawn in whichever process loads the item."""

    def __init__(self, sm: ScaleMatch):
        self.sm = sm

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> list[float]:
        return [self.sm.scale_for([square(0, 0, 40)]) for _ in range(3)]


def test_dataloader_workers_draw_their_own_reproducible_streams():
    sm = ScaleMatch(TARGET)
    sm.scale_for([square(0, 0, 40)])  # a stream made in the parent must not be shared by the workers

    def load() -> list[list[float]]:
        torch.manual_seed(0)
        loader = torch.utils.data.DataLoader(FactorsDataset(sm), batch_size=None, num_workers=2)
        return [[float(v) for v in item] for item in loader]

    items = load()
    assert items[0] != items[1]  # items 0 and 1 come from workers 0 and 1
    assert load() == items


def test_sm_reproduces_the_target_distribution():
    # External images with one big box each; scale_range wide enough that no draw is rejected, so the
    # matched sizes c·s are draws from the target: the KS test must not tell them from the target's
    # own sizes, and must tell the unmatched ones apart (the test can fail).
    raw = np.exp(np.random.RandomState(1).normal(2.0, 0.5, 20000))
    target = SizeDistribution.from_sizes(raw)
    sm = ScaleMatch(target, scale_range=(1e-4, 1.0), rng=np.random.RandomState(0))
    extents = np.exp(np.random.RandomState(3).uniform(np.log(300), np.log(3000), 3000))
    matched = [sm.scale_for([square(0, 0, e)]) * e for e in extents]
    assert stats.ks_2samp(matched, raw).pvalue > 0.001  # a false alarm once in a thousand seeds
    assert stats.ks_2samp(extents, raw).pvalue < 1e-10
