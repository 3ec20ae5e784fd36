"""Hand-built cases of a few boxes each; every expected number is worked out in the comments (reference §6)."""
from __future__ import annotations

import math

import pytest

from tinysm.data.annotations import load_annotations
from tinysm.evaluation import evaluate_tiny

# AP when the ranked list reaches recall 1/2 at precision p and never more: 51 of the 101 recall
# points (0, 0.01, ..., 0.5) sample p, the other 50 sample 0.
HALF_RECALL_AP = 51 / 101 * 100


def close(value: float):
    """Precision is tp / (tp + fp + eps) in the reference, so a perfect list gives 100 - 1e-14."""
    return pytest.approx(value, rel=1e-12, abs=1e-12)


def make_gt(boxes, n_images=1):
    """boxes: (image_id, [x, y, w, h], extra keys); ids count from 1 unless given."""
    annotations = []
    for index, (image_id, bbox, extra) in enumerate(boxes):
        ann = {"id": index + 1, "image_id": image_id, "category_id": 1, "bbox": bbox, "area": bbox[2] * bbox[3]}
        ann.update(extra)
        annotations.append(ann)
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 640, "height": 512} for i in range(n_images)]
    return load_annotations({"images": images, "annotations": annotations,
                             "categories": [{"id": 1, "name": "person"}]})


def det(bbox, score, image_id=0):
    return {"image_id": image_id, "category_id": 1, "bbox": bbox, "score": score}


@pytest.mark.parametrize("flag", ["ignore", "uncertain"])
def test_ignore_and_uncertain_regions_absorb_detections_through_iod(flag):
    # A 10x10 person and a 40x40 ignore region. The best detection lies inside the region (IoU
    # 100/1600 < 0.25, IoD 1): ignored, not a false positive. Ranked list: ignored, TP -> AP 100.
    # Plain COCO would rank FP, TP: precision 1/2 at recall 1 -> AP 50.
    gt = make_gt([(0, [0, 0, 10, 10], {}), (0, [50, 50, 40, 40], {flag: True})])
    result = evaluate_tiny(gt, [det([60, 60, 10, 10], 0.9), det([0, 0, 10, 10], 0.8)])
    for iou in (25, 50, 75):
        assert result.metrics[f"AP{iou}_all"] == close(100.0)
        assert result.metrics[f"AP{iou}_tiny2"] == close(100.0)     # area 100 is in [64, 144]
        assert result.metrics[f"MR{iou}_tiny2"] == 0.0       # size 10 is in [8, 12]


def test_out_of_range_gts_absorb_and_out_of_range_detections_are_ignored():
    # GTs: 4x4 (area 16, tiny1) and 30x30 (area 900, small). Detections by score: a 30x30 box far
    # from both (0.95), one on the big GT (0.9), one on the small GT (0.8).
    gt = make_gt([(0, [0, 0, 4, 4], {}), (0, [100, 100, 30, 30], {})])
    dets = [det([300, 300, 30, 30], 0.95), det([100, 100, 30, 30], 0.9), det([0, 0, 4, 4], 0.8)]
    m = evaluate_tiny(gt, dets).metrics
    # tiny1: the far box is unmatched with area 900 > 64 -> ignored; the big GT is out of range,
    # so the box on it is ignored; the small one is a TP. -> AP 100.
    assert m["AP50_tiny1"] == close(100.0)
    # small: the far box is a FP in range; the box on the big GT is a TP; the box on the small GT
    # matches an out-of-range GT -> ignored. Ranked FP, TP: precision 1/2 at recall 1 -> AP 50.
    assert m["AP50_small"] == close(50.0)
    # all: FP, TP, TP -> precision 1/2 at recall 1/2 and 2/3 at recall 1 -> envelope 2/3 everywhere.
    assert m["AP50_all"] == close(200 / 3)


def test_range_bounds_are_inclusive_at_both_ends():
    # An 8x8 box: area 64 is in tiny1 [1, 64] and tiny2 [64, 144]; size 8 in MR tiny1 [2, 8] and tiny2 [8, 12].
    gt = make_gt([(0, [10, 10, 8, 8], {})])
    m = evaluate_tiny(gt, [det([10, 10, 8, 8], 0.9)]).metrics
    assert m["AP50_tiny1"] == m["AP50_tiny2"] == close(100.0)
    assert m["MR50_tiny1"] == m["MR50_tiny2"] == 0.0
    assert m["AP50_tiny3"] == -1.0 and m["MR50_tiny3"] == -1.0   # no regular GT there: undefined


def test_crowd_regions_absorb_several_detections():
    # A crowd region is matched by IoD and reusable: both boxes inside it are ignored. The person
    # is found last: ignored, ignored, TP -> AP 100.
    gt = make_gt([(0, [0, 0, 10, 10], {}), (0, [100, 100, 100, 100], {"iscrowd": 1})])
    dets = [det([110, 110, 20, 20], 0.9), det([150, 150, 20, 20], 0.85), det([0, 0, 10, 10], 0.8)]
    assert evaluate_tiny(gt, dets).metrics["AP50_all"] == close(100.0)


def test_crowd_second_chance_applies_the_iod_formula_to_the_stored_iod():
    # The reference's second chance computes x/(1+x)(1 + A_g/A_d) from the stored overlap, which
    # for a crowd GT is already the IoD. A 20x20 box with a 10x10 corner in a 100x100 crowd region:
    # IoD 0.25 < 0.5 (no match), but 0.25/1.25 * (1 + 10000/400) = 5.2 >= 0.5: ignored, so the list
    # is ignored, TP -> AP 100 (with the true IoD it would be a FP first: AP 50).
    gt = make_gt([(0, [300, 300, 10, 10], {}), (0, [0, 0, 100, 100], {"iscrowd": 1})])
    dets = [det([90, 90, 20, 20], 0.9), det([300, 300, 10, 10], 0.8)]
    assert evaluate_tiny(gt, dets).metrics["AP50_all"] == close(100.0)


def test_equal_overlaps_go_to_the_later_gt():
    # The first detection has IoU 1/2 with both GTs and takes the later one in file order. The
    # second detection then only has IoU 25/75 with the free GT: a FP at t = 0.5.
    # Ranked TP, FP -> recall 1/2 at precision 1.
    a, b = [0, 0, 10, 5], [0, 0, 5, 10]
    dets = [det([0, 0, 10, 10], 0.9), det([0, 0, 5, 10], 0.8)]
    assert evaluate_tiny(make_gt([(0, a, {}), (0, b, {})]), dets).metrics["AP50_all"] == close(HALF_RECALL_AP)
    # With the GTs the other way round it takes `a`, and the second detection gets `b`: AP 100.
    assert evaluate_tiny(make_gt([(0, b, {}), (0, a, {})]), dets).metrics["AP50_all"] == close(100.0)


@pytest.mark.parametrize("fp_image, ap", [(0, 50.0), (1, 100.0)])
def test_score_ties_across_images_go_to_the_lower_image_id(fp_image, ap):
    # A FP and a TP with the same score in images 0 and 1: the lower image id is ranked first.
    # FP first -> precision 1/2 at recall 1 (AP 50); TP first -> AP 100.
    tp_image = 1 - fp_image
    gt = make_gt([(tp_image, [0, 0, 10, 10], {})], n_images=2)
    dets = [det([0, 0, 10, 10], 0.5, tp_image), det([200, 200, 10, 10], 0.5, fp_image)]
    assert evaluate_tiny(gt, dets).metrics["AP50_all"] == close(ap)


def test_images_without_gt_count_for_fppi_and_their_detections_are_false_positives():
    # 10 images; image 0 has two persons, one found (score 0.8); a FP (0.9) sits in image 5, which
    # has no GT; the other images are empty. Ranked FP, TP: FPPI 0.1, 0.1; recall 0, 1/2.
    # Points 0.01 ... 0.056 have no entry (recall 0); 0.1 (exactly, as <=) ... 1 read 1/2.
    # MR = exp((4 ln 1 + 5 ln 1/2) / 9) = 0.5^(5/9). The reference quirk reads the final recall 1/2
    # at the first four points too: MR 50.
    gt = make_gt([(0, [0, 0, 10, 10], {}), (0, [100, 100, 10, 10], {})], n_images=10)
    dets = [det([300, 300, 10, 10], 0.9, 5), det([0, 0, 10, 10], 0.8, 0)]
    assert evaluate_tiny(gt, dets).metrics["MR50_all"] == close(100 * 0.5 ** (5 / 9))
    assert evaluate_tiny(gt, dets, reference_quirks=True).metrics["MR50_all"] == close(50.0)
    assert evaluate_tiny(gt, dets).metrics["AP50_all"] == close(51 * 0.5 / 101 * 100)


def test_mr_size_filter_runs_after_the_top_1000():
    # Two 10x10 persons (MR tiny2 = [8, 12], detections kept for sqrt(wh) in [6.4, 15)), one
    # image. A 40x40 FP (0.9) and a TP (0.8).
    gt = make_gt([(0, [0, 0, 10, 10], {}), (0, [100, 100, 10, 10], {})])
    dets = [det([300, 300, 40, 40], 0.9), det([0, 0, 10, 10], 0.8)]
    m = evaluate_tiny(gt, dets).metrics
    assert m["MR50_tiny2"] == close(50.0)                 # FP filtered: recall 1/2 everywhere
    assert m["MR50_all"] == close(100 * 0.5 ** (1 / 9))  # FPPI 1: only the last point reads 1/2
    # 1000 big boxes outrank the TP: the top 1000 are all filtered out, the TP was cut before the
    # filter, so nothing is left: recall 0 everywhere, MR 100.
    crowd_of_fps = [det([300 + i % 30 * 10, 100 + i // 30 * 10, 40, 40], 0.9) for i in range(1000)]
    assert evaluate_tiny(gt, crowd_of_fps + [det([0, 0, 10, 10], 0.5)]).metrics["MR50_tiny2"] == close(100.0)


@pytest.mark.parametrize("gt_area, ignored", [(150.0, False), (151.0, True)])
def test_mr_fallback_rule_is_strictly_above_one_half(gt_area, ignored):
    # An ignore region whose `area` field is gt_area; the 10x10 detection (0.9) overlaps it by 25
    # px: IoD 0.25 < 0.5. The rule's x/(1+x)(1 + A_g/A_d) = 0.2 * (1 + gt_area/100): exactly 0.5 for
    # 150 (not > 0.5: a FP), 0.502 for 151 (ignored). A second person is never found, so the recall
    # tops at 1/2: ignored -> 1/2 at all 9 points (MR 50); FP first at FPPI 1 -> 0.5^(1/9).
    gt = make_gt([(0, [200, 200, 10, 10], {}), (0, [300, 300, 10, 10], {}),
                  (0, [0, 0, 15, 10], {"ignore": True, "area": gt_area})])
    dets = [det([10, 5, 10, 10], 0.9), det([200, 200, 10, 10], 0.8)]
    expected = 50.0 if ignored else 100 * 0.5 ** (1 / 9)
    assert evaluate_tiny(gt, dets).metrics["MR50_all"] == close(expected)


def test_ap_iod_second_chance_accepts_exactly_the_threshold():
    # The detection covers half of a 20x10 ignore region: IoU 1/3 < 0.5, and the reference's IoD
    # from IoU, (1/3)/(4/3) * (1 + 200/200), is exactly 0.5 >= 0.5: ignored, so AP50 is 100;
    # at t = 0.75 it is a FP ranked before the TP -> AP75 50.
    gt = make_gt([(0, [100, 100, 10, 10], {}), (0, [0, 0, 20, 10], {"ignore": True})])
    m = evaluate_tiny(gt, [det([10, 0, 20, 10], 0.9), det([100, 100, 10, 10], 0.8)]).metrics
    assert m["AP50_all"] == close(100.0)
    assert m["AP75_all"] == close(50.0)


def test_id_zero_quirk():
    # GT ids 0 and 1, both found; the detection on id 0 ranks first. Fixed: AP 100, MR 0.
    # Quirk (reference §6.3): that detection is a FP and GT 0 a miss: FP, TP -> recall 1/2 at precision
    # 1/2 (AP = 51 * 0.5 / 101); MR: FPPI 1 for both entries, no entry below the first 8 points, the
    # small-set quirk reads the final recall 1/2 there too -> MR 50.
    gt = make_gt([(0, [0, 0, 10, 10], {"id": 0}), (0, [100, 100, 10, 10], {"id": 1})])
    dets = [det([0, 0, 10, 10], 0.9), det([100, 100, 10, 10], 0.8)]
    fixed = evaluate_tiny(gt, dets).metrics
    quirky = evaluate_tiny(gt, dets, reference_quirks=True).metrics
    assert fixed["AP50_all"] == close(100.0) and fixed["MR50_all"] == 0.0
    assert quirky["AP50_all"] == close(51 * 0.5 / 101 * 100)
    assert quirky["MR50_all"] == close(50.0)


def test_empty_detections_give_ap_0_and_mr_100():
    gt = make_gt([(0, [0, 0, 10, 10], {}), (0, [50, 50, 30, 30], {})], n_images=3)
    m = evaluate_tiny(gt, []).metrics
    assert m["AP50_tiny"] == 0.0 and m["AP50_all"] == 0.0 and m["MR50_tiny"] == close(100.0)
    assert m["AP50_reasonable"] == -1.0 and m["MR50_tiny1"] == -1.0   # no regular GT in range


def test_flat_dict_has_the_spec_keys_in_percent():
    gt = make_gt([(0, [0, 0, 10, 10], {})])
    m = evaluate_tiny(gt, [det([0, 0, 10, 10], 0.9)]).metrics
    ranges = ["tiny1", "tiny2", "tiny3", "tiny", "small", "all"]
    expected = {f"AP{t}_{r}" for t in (25, 50, 75) for r in ranges + ["reasonable"]}
    expected |= {f"MR{t}_{r}" for t in (25, 50, 75) for r in ranges}
    assert set(m) == expected
    assert m["AP50_tiny"] == close(100.0) and all(isinstance(v, float) and not math.isnan(v) for v in m.values())
