"""Merging tile detections back into images (reference §2.3), on images cut with `tile_grid`."""
from __future__ import annotations

import numpy as np
import pytest

from tinysm.data.annotations import AnnotationError, load_annotations
from tinysm.data.merge import MergeConfig, merge_tile_detections, tile_offsets
from tinysm.data.tiles import cut_tiles


def full_images(seed: int = 0):
    """Two frames with 40 disjoint tiny boxes each: odd ones in the x-overlap band of the test tiles
    (x 540-640), even ones in a row of columns 25 px apart at random heights (crossing the y bands)."""
    rng = np.random.default_rng(seed)
    images = [{"id": 5, "file_name": "labeled_images/a.jpg", "width": 1920, "height": 1080},
              {"id": 9, "file_name": "labeled_images/b.jpg", "width": 1280, "height": 720}]
    annotations = []
    for image in images:
        for k in range(40):
            w, h = (float(v) for v in rng.uniform(4, 20, 2))
            if k % 2:
                x, y = 550 + float(rng.uniform(0, 10)), 20 + 34 * (k // 2) + float(rng.uniform(0, 10))
            else:
                x, y = 700 + 25 * (k // 2) + float(rng.uniform(0, 4)), float(rng.uniform(0, image["height"] - h))
            annotations.append({"id": len(annotations), "image_id": image["id"], "category_id": 1,
                                "bbox": [x, y, w, h], "area": w * h})
    return load_annotations({"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]})


def tile_detections(tiles):
    """One detection per box copy in every tile (tile coordinates); a box's copies share its score."""
    results = []
    for ann in tiles.annotations:
        corner = tiles.image_by_id[ann.image_id].corner
        x, y = ann.bbox[0] + corner[0], ann.bbox[1] + corner[1]
        score = 0.1 + 0.8 * ((x * 7.3 + y * 3.1) % 1.0)      # a function of the box in image coordinates
        results.append({"image_id": ann.image_id, "category_id": 1, "bbox": list(ann.bbox), "score": score})
    return results


@pytest.fixture(scope="module")
def scene():
    full = full_images()
    # keep_ratio 0.999: a tile keeps only the boxes (all but) entirely inside it, so the copies are exact
    # (1.0 would lose boxes to the rounding of the clipped width).
    tiles = cut_tiles(full, tile=(640, 512), overlap=(100, 100), keep_ratio=0.999, keep_empty=True)
    return full, tiles, tile_detections(tiles)


@pytest.mark.parametrize("config", [MergeConfig.two_stage(), MergeConfig.one_stage()])
def test_boxes_duplicated_in_overlapping_tiles_come_back_once(scene, config):
    full, tiles, results = scene
    assert len(results) > len(full.annotations) + 20          # the overlaps really duplicate boxes
    merged = merge_tile_detections(results, tiles, full, config)
    got = sorted((int(i), *np.round(b, 6)) for i, b in zip(merged.image_id, merged.bbox))
    expected = sorted((a.image_id, *np.round(a.bbox, 6)) for a in full.annotations)
    assert got == expected
    # Sorted by image, then by descending score.
    assert np.all(np.diff(merged.image_id) >= 0)
    for image_id in (5, 9):
        assert np.all(np.diff(merged.score[merged.image_id == image_id]) <= 0)


def test_explicit_offsets_equal_the_tile_file(scene):
    full, tiles, results = scene
    offsets = tile_offsets(tiles, full)
    assert offsets[0] == (5, 0, 0) and all(len(v) == 3 for v in offsets.values())
    by_file = merge_tile_detections(results, tiles, full)
    by_offsets = merge_tile_detections(results, offsets)
    np.testing.assert_array_equal(by_file.bbox, by_offsets.bbox)


def test_caps_scores_and_nms_threshold():
    # One tile at (100, 50) of image 3. Boxes: A (0.9); B overlapping A with IoU 0.6 (0.8);
    # C overlapping A with IoU 1/3 (0.7); D far away (0.04, below the 0.05 score floor).
    offsets = {0: (3, 100, 50)}
    results = [{"image_id": 0, "category_id": 1, "bbox": [0.0, 0.0, 10.0, 10.0], "score": 0.9},
               {"image_id": 0, "category_id": 1, "bbox": [0.0, 2.5, 10.0, 10.0], "score": 0.8},   # IoU 75/125
               {"image_id": 0, "category_id": 1, "bbox": [5.0, 0.0, 10.0, 10.0], "score": 0.7},   # IoU 50/150
               {"image_id": 0, "category_id": 1, "bbox": [300.0, 300.0, 10.0, 10.0], "score": 0.04}]
    merged = merge_tile_detections(results, offsets)
    assert merged.score.tolist() == [0.9, 0.7]
    assert merged.bbox.tolist() == [[100.0, 50.0, 10.0, 10.0], [105.0, 50.0, 10.0, 10.0]]
    assert merged.image_id.tolist() == [3, 3]
    assert merge_tile_detections(results, offsets, config=MergeConfig.one_stage(max_per_image=1)).score.tolist() == [0.9]
    loose = MergeConfig(per_tile_nms=False, nms_iou=0.7, score_threshold=0.0)
    assert merge_tile_detections(results, offsets, config=loose).score.tolist() == [0.9, 0.8, 0.7, 0.04]


def test_unknown_tiles_are_named(scene):
    full, tiles, results = scene
    with pytest.raises(AnnotationError, match="image_id 999 is not the id of any image"):
        merge_tile_detections(results + [dict(results[0], image_id=999)], tiles, full)
    with pytest.raises(ValueError, match="full_images"):
        merge_tile_detections(results, tiles)


def test_cli_evaluates_tile_results_after_the_merge(scene, tmp_path, capsys):
    import json

    from tinysm.cli import main
    from tinysm.data.annotations import save_annotations

    full, tiles, results = scene
    gt_path, tiles_path, results_path, out = (tmp_path / name for name in ("gt.json", "tiles.json", "r.json", "m.json"))
    save_annotations(full, gt_path)
    save_annotations(tiles, tiles_path)
    results_path.write_text(json.dumps(results))
    assert main(["evaluate", str(gt_path), str(results_path), "--merge-tiles", str(tiles_path), "--json", str(out)]) == 0
    metrics = json.loads(out.read_text())
    # Every box comes back once and exactly where it was: perfect detections.
    assert metrics["AP50_all"] == pytest.approx(100.0) and metrics["MR50_all"] == 0.0
    assert "AP50" in capsys.readouterr().out
