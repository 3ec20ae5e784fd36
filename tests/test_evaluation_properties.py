"""Properties of the evaluator and the cross-check with pycocotools where the protocols coincide (reference §6.1)."""
from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from tinysm.data.annotations import load_annotations
from tinysm.evaluation import evaluate_tiny
from tinysm.evaluation.protocol import IOU_THRESHOLDS


def random_scene(seed: int, n_images: int = 8, flags: bool = True, categories: tuple[int, ...] = (1,)):
    """1920×1080 images with tiny boxes (2-40 px), optional ignore/uncertain flags, jittered and stray detections."""
    rng = np.random.default_rng(seed)
    images = [{"id": int(i), "file_name": f"{i}.jpg", "width": 1920, "height": 1080}
              for i in rng.permutation(np.arange(10, 10 + n_images))]
    annotations, results = [], []
    for image in images:
        for _ in range(int(rng.integers(0, 12))):
            w, h = (float(v) for v in np.exp(rng.uniform(np.log(2), np.log(40), 2)))
            x, y = float(rng.uniform(0, 1800)), float(rng.uniform(0, 1000))
            category = int(rng.choice(categories))
            annotations.append({"id": len(annotations) + 1, "image_id": image["id"], "category_id": category,
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0,
                                "ignore": flags and bool(rng.random() < 0.15),
                                "uncertain": flags and bool(rng.random() < 0.1)})
            for _ in range(int(rng.integers(0, 4))):
                j = rng.normal(0, 0.2, 4)
                results.append({"image_id": image["id"], "category_id": category, "score": float(rng.random()),
                                "bbox": [x + j[0] * w, y + j[1] * h, w * np.exp(j[2]), h * np.exp(j[3])]})
        for _ in range(int(rng.integers(0, 30))):
            s = float(np.exp(rng.uniform(np.log(2), np.log(40))))
            results.append({"image_id": image["id"], "category_id": int(rng.choice(categories)),
                            "score": float(rng.random()),
                            "bbox": [float(rng.uniform(0, 1880)), float(rng.uniform(0, 1040)), s, s * float(rng.uniform(0.5, 2))]})
    gt = {"images": images, "annotations": annotations,
          "categories": [{"id": c, "name": f"class{c}"} for c in categories]}
    return gt, [results[i] for i in rng.permutation(len(results))]


def pycocotools_ap_all(gt: dict, results: list, max_dets: int) -> np.ndarray:
    """COCOeval's AP (percent) per IoU threshold for the area range [1, 1e10]."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        evaluator = COCOeval(coco, coco.loadRes(copy.deepcopy(results)), "bbox")
        evaluator.params.iouThrs = np.array(IOU_THRESHOLDS)
        evaluator.params.maxDets = [max_dets]
        evaluator.params.areaRng, evaluator.params.areaRngLbl = [[1, 1e10]], ["all"]
        evaluator.evaluate()
        evaluator.accumulate()
    precision = evaluator.eval["precision"][:, :, :, 0, 0]
    return np.array([np.mean(p[p > -1]) * 100 for p in precision])


@pytest.mark.parametrize("seed, max_dets, categories", [(0, 1000, (1,)), (1, 5, (1,)), (2, 1000, (1, 2)),
                                                          (3, 20, (1, 2, 3))])
def test_ap_all_equals_pycocotools_without_ignore_regions(seed, max_dets, categories):
    # No ignore/uncertain/crowd boxes and every GT area >= 1: the "all" range is plain COCO AP.
    gt, results = random_scene(seed, flags=False, categories=categories)
    metrics = evaluate_tiny(load_annotations(gt), results, max_dets=max_dets).metrics
    expected = pycocotools_ap_all(gt, results, max_dets)
    got = [metrics[f"AP{t}_all"] for t in (25, 50, 75)]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    assert 0 < got[0] < 100  # a case with real errors, not a trivial 0 or 100


@pytest.mark.parametrize("seed", range(3))
def test_perfect_detections_give_ap_100_and_mr_0(seed):
    gt, _ = random_scene(seed)
    rng = np.random.default_rng(seed)
    perfect = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": float(rng.random())}
               for a in gt["annotations"] if not (a["ignore"] or a["uncertain"])]
    metrics = evaluate_tiny(load_annotations(gt), perfect).metrics
    defined = {k: v for k, v in metrics.items() if v != -1}
    assert len(defined) > 20
    for key, value in defined.items():
        assert value == pytest.approx(0.0 if key.startswith("MR") else 100.0, abs=1e-9), key


@pytest.mark.parametrize("seed", range(4))
def test_a_detection_far_from_every_gt_never_raises_ap_or_lowers_mr(seed):
    gt, results = random_scene(seed)
    annotations = load_annotations(gt)
    before = evaluate_tiny(annotations, results).metrics
    rng = np.random.default_rng(seed)
    for score in (0.0, float(rng.random()), 1.0):
        stray = {"image_id": gt["images"][0]["id"], "category_id": 1, "bbox": [5000.0, 5000.0, 10.0, 12.0], "score": score}
        after = evaluate_tiny(annotations, results + [stray]).metrics
        for key in before:
            if key.startswith("AP"):
                assert after[key] <= before[key], key
            else:
                assert after[key] >= before[key], key
    assert after != before  # the stray box did count somewhere


@pytest.mark.parametrize("seed", range(3))
def test_permuting_images_or_detections_changes_nothing(seed):
    gt, results = random_scene(seed)
    expected = evaluate_tiny(load_annotations(gt), results).metrics
    rng = np.random.default_rng(100 + seed)
    shuffled_gt = dict(gt, images=[gt["images"][i] for i in rng.permutation(len(gt["images"]))])
    shuffled_results = [results[i] for i in rng.permutation(len(results))]
    assert evaluate_tiny(load_annotations(shuffled_gt), shuffled_results).metrics == expected


def test_result_views_agree():
    gt, results = random_scene(7)
    result = evaluate_tiny(load_annotations(gt), results)
    frame = result.to_frame()
    assert len(frame) == len(result.metrics)
    row = frame[(frame.metric == "AP") & (frame.iou == 0.5) & (frame["range"] == "tiny")]
    assert row.value.item() == result.metrics["AP50_tiny"]
    recall, precision = result.pr_curve(0.5, "tiny")
    assert recall.shape == precision.shape == (101,)
    assert np.mean(precision) * 100 == pytest.approx(result.metrics["AP50_tiny"], abs=1e-9)
    fppi, miss = result.mr_curve(0.5, "tiny")
    assert fppi.shape == miss.shape and np.all(np.diff(miss) <= 0)   # more FPPI, fewer misses
    points = result.miss_rate[list(result.iou_thresholds).index(0.5), result.mr_setups.index("tiny")]
    assert np.exp(np.mean(np.log(points))) * 100 == pytest.approx(result.metrics["MR50_tiny"], rel=1e-12)
    assert "AP50" in result.table() and result.table().count("\n") == 7
