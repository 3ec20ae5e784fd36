"""Annotation loading, validation, round trip and filters (reference §1.2)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinysm.data.annotations import (
    AnnotationError, drop_dense_images, drop_ignored_boxes, load_annotations, save_annotations,
    split_crowd, to_all_task,
)


def tinyperson_dict() -> dict:
    """Two images, ids from 0 as in the official files, every TinyPerson flag, an unknown key."""
    def ann(i, image_id, bbox, cat=1, **flags):
        base = {"id": i, "image_id": image_id, "category_id": cat, "bbox": bbox,
                "area": bbox[2] * bbox[3], "iscrowd": False, "ignore": False, "uncertain": False,
                "logo": False, "in_dense_image": False, "segmentation": [[1, 2, 3, 4]]}
        base.update(flags)
        return base
    return {
        "info": {"description": "hand made"}, "type": "instances",
        "images": [{"id": 0, "file_name": "labeled_images/a.jpg", "width": 1920, "height": 1080, "seq": "s1"},
                   {"id": 1, "file_name": "labeled_images/b.jpg", "width": 1280, "height": 720}],
        "annotations": [ann(0, 0, [10.5, 20.0, 6.0, 14.0]),
                        ann(1, 0, [100, 100, 30, 20], cat=2, ignore=True),
                        ann(2, 1, [5.0, 5.0, 3.0, 9.0], uncertain=True),
                        ann(3, 1, [50.0, 60.0, 8.0, 8.0], iscrowd=True, in_dense_image=True)],
        "categories": [{"id": 1, "name": "sea_person"}, {"id": 2, "name": "earth_person"}],
    }


def write(tmp_path: Path, payload, name: str = "ann.json") -> Path:
    path = tmp_path / name
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return path


def test_load_typed_fields_and_columns(tmp_path):
    data = load_annotations(write(tmp_path, tinyperson_dict()))
    assert [im.id for im in data.images] == [0, 1]
    first = data.annotations[0]
    assert first.bbox == (10.5, 20.0, 6.0, 14.0) and first.area == 84.0
    assert [a.is_ignored for a in data.annotations] == [False, True, True, True]
    cols = data.columns()
    np.testing.assert_array_equal(cols["image_id"], [0, 0, 1, 1])
    np.testing.assert_array_equal(cols["bbox"][1], [100, 100, 30, 20])
    np.testing.assert_array_equal(cols["uncertain"], [False, False, True, False])
    assert [a.id for a in data.annotations_by_image[1]] == [2, 3]


def test_round_trip_is_lossless(tmp_path):
    original = tinyperson_dict()
    out = save_annotations(load_annotations(write(tmp_path, original)), tmp_path / "out.json")
    assert json.loads(out.read_text()) == original


def test_round_trip_keeps_coco_style_ints_and_absent_keys(tmp_path):
    coco = {"images": [{"id": 7, "file_name": "x.jpg", "width": 640, "height": 480}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [1, 2, 3, 4], "iscrowd": 0}]}
    out = save_annotations(load_annotations(write(tmp_path, coco)), tmp_path / "out.json")
    assert json.loads(out.read_text()) == coco  # no invented 'categories', 'area' or flags; 0 stays 0


def test_all_task_merges_categories(tmp_path):
    merged = to_all_task(load_annotations(write(tmp_path, tinyperson_dict())))
    assert merged.categories == [{"id": 1, "name": "person"}]
    assert {a.category_id for a in merged.annotations} == {1}


def test_filters(tmp_path):
    data = load_annotations(write(tmp_path, tinyperson_dict()))
    assert [im.id for im in drop_dense_images(data).images] == [0]
    assert [a.id for a in drop_dense_images(data, max_boxes=None).annotations] == [0, 1]
    assert [a.id for a in drop_dense_images(tinyperson_like_without_dense(data), max_boxes=1).annotations] == []
    assert [a.id for a in drop_ignored_boxes(data).annotations] == [0, 3]
    regular, crowd = split_crowd(data)
    assert [a.id for a in regular.annotations] == [0, 1, 2] and [a.id for a in crowd.annotations] == [3]


def tinyperson_like_without_dense(data):
    """The same boxes with the dense flag cleared: only the box count can make an image dense."""
    from dataclasses import replace
    return data.with_annotations(replace(a, in_dense_image=False) for a in data.annotations)


def test_image_root_checks(tmp_path):
    root = tmp_path / "train"
    (root / "labeled_images").mkdir(parents=True)
    (root / "labeled_images" / "a.jpg").write_bytes(b"x")
    path = write(tmp_path, tinyperson_dict())
    with pytest.raises(AnnotationError, match=r"image id 1: image file .*b\.jpg does not exist"):
        load_annotations(path, image_root=root, check_files=True)
    (root / "labeled_images" / "b.jpg").write_bytes(b"x")
    assert len(load_annotations(path, image_root=root, check_files=True).images) == 2


def bad_case(mutate):
    payload = tinyperson_dict()
    mutate(payload)
    return payload


BAD_INPUTS = {
    "malformed JSON": ('{"images": [', r"file: malformed JSON at line 1"),
    "not an object": ("[1, 2]", r"top level: expected a JSON object, got list"),
    "missing annotations": (bad_case(lambda p: p.pop("annotations")), r"top level: missing required key 'annotations'"),
    "missing bbox": (bad_case(lambda p: p["annotations"][2].pop("bbox")),
                     r"annotation id 2 \(index 2\): missing required key 'bbox'"),
    "missing image width": (bad_case(lambda p: p["images"][1].pop("width")),
                            r"image id 1 \(index 1\): missing required key 'width'"),
    "nan in bbox": (bad_case(lambda p: p["annotations"][1].__setitem__("bbox", [1.0, float("nan"), 2.0, 2.0])),
                    r"annotation id 1 \(index 1\): 'bbox' has a non-finite value"),
    "infinite bbox": (bad_case(lambda p: p["annotations"][0].__setitem__("bbox", [1.0, 1.0, float("inf"), 2.0])),
                      r"annotation id 0 \(index 0\): 'bbox' has a non-finite value"),
    "zero width": (bad_case(lambda p: p["annotations"][3].__setitem__("bbox", [1.0, 1.0, 0.0, 2.0])),
                   r"annotation id 3 \(index 3\): 'bbox' width and height must be > 0, got w=0.0 h=2.0"),
    "negative height": (bad_case(lambda p: p["annotations"][0].__setitem__("bbox", [1.0, 1.0, 2.0, -3.0])),
                        r"annotation id 0 \(index 0\): 'bbox' width and height must be > 0"),
    "short bbox": (bad_case(lambda p: p["annotations"][0].__setitem__("bbox", [1.0, 1.0, 2.0])),
                   r"annotation id 0 \(index 0\): 'bbox' must be four numbers"),
    "unknown image id": (bad_case(lambda p: p["annotations"][1].__setitem__("image_id", 9)),
                         r"annotation id 1 \(index 1\): image_id 9 is not the id of any image"),
    "duplicate annotation id": (bad_case(lambda p: p["annotations"][3].__setitem__("id", 0)),
                                r"annotation id 0: duplicate annotation id"),
    "duplicate image id": (bad_case(lambda p: p["images"][1].__setitem__("id", 0)), r"image id 0: duplicate image id"),
    "flag not boolean": (bad_case(lambda p: p["annotations"][0].__setitem__("ignore", "yes")),
                         r"annotation id 0 \(index 0\): flag 'ignore' must be a boolean or 0/1"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_names_file_entry_and_problem(tmp_path, case):
    payload, message = BAD_INPUTS[case]
    path = write(tmp_path, payload)
    with pytest.raises(AnnotationError, match=message) as info:
        load_annotations(path)
    assert str(info.value).startswith(str(path) + ": ")


def test_file_name_outside_image_root(tmp_path):
    payload = bad_case(lambda p: p["images"][0].__setitem__("file_name", "../../etc/passwd"))
    with pytest.raises(AnnotationError, match=r"image id 0: file_name '../../etc/passwd' resolves outside the image root"):
        load_annotations(write(tmp_path, payload), image_root=tmp_path / "train")
    absolute = bad_case(lambda p: p["images"][1].__setitem__("file_name", "/etc/passwd"))
    with pytest.raises(AnnotationError, match=r"image id 1: .*resolves outside the image root"):
        load_annotations(write(tmp_path, absolute), image_root=tmp_path / "train")


def test_missing_file(tmp_path):
    with pytest.raises(AnnotationError, match=r"nope\.json: file: does not exist"):
        load_annotations(tmp_path / "nope.json")


def test_interrupted_write_keeps_previous_file(tmp_path):
    from tinysm.io import atomic_path

    target = write(tmp_path, {"keep": "me"}, "target.json")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text('{"half": ')
            raise KeyboardInterrupt
    assert json.loads(target.read_text()) == {"keep": "me"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target.json"]


def test_atomic_writes_get_ordinary_file_permissions(tmp_path):
    import os

    from tinysm.io import atomic_write_text

    umask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "out.json", "{}")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644
