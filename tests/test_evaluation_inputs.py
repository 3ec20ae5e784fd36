"""Bad detection input gives one clear error naming the entry; valid edge cases work (issue 4); the CLI."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tinysm.cli import main
from tinysm.data.annotations import AnnotationError, load_annotations
from tinysm.data.detections import Detections
from tinysm.evaluation import evaluate_tiny

GT = {"images": [{"id": 0, "file_name": "0.jpg", "width": 640, "height": 512},
                 {"id": 7, "file_name": "7.jpg", "width": 640, "height": 512}],
      "annotations": [{"id": 1, "image_id": 0, "category_id": 1, "bbox": [10, 10, 8, 8], "area": 64},
                      {"id": 2, "image_id": 7, "category_id": 1, "bbox": [50, 50, 20, 20], "area": 400}],
      "categories": [{"id": 1, "name": "person"}]}


def good(**changes):
    entry = {"image_id": 0, "category_id": 1, "bbox": [10.0, 10.0, 8.0, 8.0], "score": 0.9}
    entry.update(changes)
    return entry


@pytest.mark.parametrize("bad, message", [
    (good(image_id=3), "image_id 3 is not the id of any image"),
    (good(score=math.nan), "'score' must be finite"),
    (good(score=math.inf), "'score' must be finite"),
    (good(bbox=[1.0, math.nan, 3.0, 4.0]), "'bbox' has a non-finite value"),
    (good(bbox=[1.0, 2.0, -3.0, 4.0]), "width and height must be >= 0"),
    (good(category_id=2), "category_id 2 is not a category of the ground truth"),
    (good(bbox=[1.0, 2.0, 3.0]), "'bbox' must be four numbers"),
    (good(bbox="1 2 3 4"), "'bbox' must be four numbers"),
    (good(score="high"), "'score' must be a number"),
    (good(image_id=0.5), "'image_id' must be an integer"),
    ({"image_id": 0, "category_id": 1, "bbox": [1, 2, 3, 4]}, "missing required key 'score'"),
    ("not an object", "expected an object"),
])
def test_bad_entries_are_named(bad, message):
    results = [good(), good(image_id=7), bad]
    with pytest.raises(AnnotationError, match="detection at index 2") as err:
        evaluate_tiny(load_annotations(GT), results)
    assert message in str(err.value)


def test_a_results_file_must_be_a_list(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"annotations": []}))
    with pytest.raises(AnnotationError, match="must be a JSON list"):
        evaluate_tiny(load_annotations(GT), path)
    path.write_text("[{")
    with pytest.raises(AnnotationError, match="malformed JSON at line 1"):
        evaluate_tiny(load_annotations(GT), path)


def test_zero_sized_detections_are_valid_and_never_match():
    # A w = 0 box (0.95) matches nothing. Its area 0 is below every AP range, so AP ignores it:
    # the TP alone gives AP 100 in tiny1. MR's "all" setup keeps sizes >= -1/1.25: a FP at FPPI 1/2
    # (two images). Image 7's GT is missed, so recall tops at 1/2, read at the points 0.56 and 1 only:
    # MR = exp(2/9 ln 1/2).
    m = evaluate_tiny(load_annotations(GT), [good(bbox=[10.0, 10.0, 0.0, 8.0], score=0.95), good()]).metrics
    assert m["AP50_tiny1"] == pytest.approx(100.0)
    assert m["MR50_all"] == pytest.approx(100 * 0.5 ** (2 / 9), rel=1e-12)


def test_paths_lists_and_arrays_give_the_same_numbers(tmp_path):
    results = [good(), good(image_id=7, bbox=[52.0, 50.0, 20.0, 20.0], score=0.5), good(bbox=[300, 300, 8, 8], score=0.7)]
    gt_path, results_path = tmp_path / "gt.json", tmp_path / "results.json"
    gt_path.write_text(json.dumps(GT))
    results_path.write_text(json.dumps(results))
    arrays = {"image_id": np.array([0, 7, 0]), "category_id": np.array([1, 1, 1]),
              "bbox": np.array([r["bbox"] for r in results], float), "score": np.array([0.9, 0.5, 0.7])}
    from_path = evaluate_tiny(gt_path, results_path).metrics
    assert evaluate_tiny(load_annotations(GT), results).metrics == from_path
    assert evaluate_tiny(gt_path, arrays).metrics == from_path
    assert evaluate_tiny(gt_path, Detections(arrays["image_id"], arrays["category_id"], arrays["bbox"],
                                             arrays["score"])).metrics == from_path


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="iou_thrs"):
        evaluate_tiny(load_annotations(GT), [], iou_thrs=(0.0, 0.5))
    with pytest.raises(ValueError, match="max_dets"):
        evaluate_tiny(load_annotations(GT), [], max_dets=0)


def test_images_without_gt_and_detections_are_fine():
    gt = dict(GT, images=GT["images"] + [{"id": 9, "file_name": "9.jpg", "width": 640, "height": 512}])
    m = evaluate_tiny(load_annotations(gt), [good(), good(image_id=7, bbox=[50.0, 50.0, 20.0, 20.0])]).metrics
    assert m["AP50_all"] == pytest.approx(100.0) and m["MR50_all"] == 0.0


def test_cli_prints_the_table_and_writes_the_flat_dict(tmp_path, capsys):
    gt_path, results_path, out = tmp_path / "gt.json", tmp_path / "results.json", tmp_path / "m" / "metrics.json"
    gt_path.write_text(json.dumps(GT))
    results_path.write_text(json.dumps([good(), good(bbox=[300, 300, 8, 8], score=0.95)]))
    assert main(["evaluate", str(gt_path), str(results_path), "--json", str(out), "--max-dets", "1"]) == 0
    printed = capsys.readouterr().out
    assert "AP50" in printed and "MR50" in printed and "max_dets 1" in printed
    metrics = json.loads(out.read_text())
    # One detection per image for AP: the 0.95 FP alone in image 0, and image 7's GT is missed.
    assert metrics["AP50_all"] == 0.0 and metrics["AP50_reasonable"] == -1
    assert set(metrics) == set(evaluate_tiny(gt_path, results_path).metrics)


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    gt_path, results_path = tmp_path / "gt.json", tmp_path / "results.json"
    gt_path.write_text(json.dumps(GT))
    results_path.write_text(json.dumps([good(image_id=5)]))
    assert main(["evaluate", str(gt_path), str(results_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "detection at index 0" in error and "image_id 5" in error
