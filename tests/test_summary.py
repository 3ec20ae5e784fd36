"""Dataset summaries: counts per flag, dense images, and √(w·h) percentiles worked out by hand."""
from __future__ import annotations

import math

import pytest

from tinysm.data.annotations import load_annotations
from tinysm.data.summary import summarize


def box(ann_id, image_id, w, h, category=1, **flags):
    return {"id": ann_id, "image_id": image_id, "category_id": category, "bbox": [1.0, 1.0, w, h], **flags}


def example():
    """Regular sizes 4, 6, 9 (4×4, 3×12, 9×9); one each of ignore, uncertain, crowd, logo(+ignore)."""
    annotations = [
        box(0, 0, 4, 4), box(1, 0, 3, 12, category=2), box(2, 1, 9, 9),
        box(3, 1, 10, 10, ignore=True), box(4, 1, 20, 5, uncertain=True),
        box(5, 1, 30, 30, iscrowd=1), box(6, 1, 5, 5, ignore=True, logo=True),
    ]
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 100, "height": 100} for i in range(3)]
    categories = [{"id": 1, "name": "sea_person"}, {"id": 2, "name": "earth_person"}]
    return load_annotations({"images": images, "annotations": annotations, "categories": categories})


def test_counts_per_flag_and_category():
    summary = summarize(example(), "hand")
    assert (summary.images, summary.images_without_boxes, summary.boxes, summary.regular) == (3, 1, 7, 3)
    assert summary.flags == {"ignore": 2, "uncertain": 1, "crowd": 1, "logo": 1, "dense": 0}
    assert summary.categories == {"sea_person": 6, "earth_person": 1}


def test_size_percentiles_of_regular_boxes_interpolate_linearly():
    # Sorted sizes [4, 6, 9]: percentile p sits at index 2p/100 between neighbours.
    summary = summarize(example())
    assert summary.size_percentiles == pytest.approx({5: 4.2, 25: 5.0, 50: 6.0, 75: 7.5, 95: 8.7})
    assert summary.size_fractions == pytest.approx(
        {"<2": 0.0, "tiny1": 2 / 3, "tiny2": 1 / 3, "tiny3": 0.0, "small": 0.0, ">=32": 0.0})


def test_dense_images_by_flag_or_by_count():
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 100, "height": 100} for i in range(3)]
    many = [box(i, 0, 2, 2) for i in range(201)]               # > 200 boxes, no flag
    flagged = [box(201, 1, 2, 2, in_dense_image=True)]          # flagged, few boxes
    summary = summarize(load_annotations({"images": images, "annotations": many + flagged}))
    assert summary.dense_images == 2 and summary.flags["dense"] == 1
    assert summary.size_fractions["tiny1"] == 1.0               # 2×2 boxes: size exactly 2 is in [2, 8)


def test_format_shows_the_numbers():
    text = summarize(example(), "hand").format()
    assert text.splitlines()[0] == "hand: 3 images (1 without boxes, 0 dense), 7 boxes"
    assert "regular 3 · ignore 2 · uncertain 1 · crowd 1 · logo 1 · dense 0" in text
    assert "p50 6.0" in text and "tiny1 66.7%" in text and "sea_person 6 · earth_person 1" in text


def test_empty_file_has_undefined_sizes():
    summary = summarize(load_annotations({"images": [], "annotations": []}), "empty")
    assert summary.boxes == 0 and all(math.isnan(v) for v in summary.size_percentiles.values())
    assert "p50 –" in summary.format() and "tiny1 –" in summary.format()


def test_name_defaults_to_the_file_name(tmp_path):
    path = tmp_path / "instances_val2017.json"
    path.write_text('{"images": [], "annotations": []}')
    assert summarize(load_annotations(path)).name == "instances_val2017.json"
