"""Tile grid and tile cut (reference §2.1, §2.2)."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, strategies as st

from tinysm.cli import main
from tinysm.data.annotations import BoxAnnotation, load_annotations
from tinysm.data.tiles import axis_offsets, clip_to_tile, cut_tiles, tile_grid


def test_spec_example_1280x720():
    # reference §2.1: T = 640x512, O = 100 -> x {0, 540, 640}, y {0, 208}, 6 tiles.
    tiles = tile_grid(1280, 720, (640, 512), (100, 100))
    assert sorted({t[0] for t in tiles}) == [0, 540, 640]
    assert sorted({t[1] for t in tiles}) == [0, 208]
    assert len(tiles) == 6
    assert tiles[0] == (0, 0, 640, 512) and tiles[-1] == (640, 208, 1280, 720)


def test_spec_example_1920x1080():
    tiles = tile_grid(1920, 1080, (640, 512), (100, 100))
    assert sorted({t[0] for t in tiles}) == [0, 540, 1080, 1280]
    assert sorted({t[1] for t in tiles}) == [0, 412, 568]
    assert len(tiles) == 12


def test_image_smaller_than_tile_is_one_tile():
    assert tile_grid(300, 200) == [(0, 0, 300, 200)]
    assert tile_grid(700, 200) == [(0, 0, 640, 200), (60, 0, 700, 200)]


def test_training_overlap_offsets():
    # stride 590: 0, 590, 1180 -> min(1280, 1180) = 1180; range stops before 1920 - 50 = 1870
    assert axis_offsets(1920, 640, 50) == [0, 590, 1180, 1280]


def test_bad_overlap_is_rejected():
    with pytest.raises(ValueError, match="tile > overlap"):
        axis_offsets(1000, 100, 100)


@given(width=st.integers(1, 4000), height=st.integers(1, 3000),
       tile_w=st.integers(16, 800), tile_h=st.integers(16, 800), data=st.data())
def test_grid_properties(width, height, tile_w, tile_h, data):
    overlap = (data.draw(st.integers(0, tile_w - 1)), data.draw(st.integers(0, tile_h - 1)))
    tiles = tile_grid(width, height, (tile_w, tile_h), overlap)
    assert len(set(tiles)) == len(tiles)
    for x1, y1, x2, y2 in tiles:
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height          # inside the image
        assert x2 - x1 == min(tile_w, width) and y2 - y1 == min(tile_h, height)  # full-size tiles
    assert max(t[2] for t in tiles) == width and max(t[3] for t in tiles) == height  # last tile flush
    # full coverage: consecutive offsets along each axis leave no gap
    for starts, size in (({t[0] for t in tiles}, min(tile_w, width)), ({t[1] for t in tiles}, min(tile_h, height))):
        starts = sorted(starts)
        assert starts[0] == 0 and all(b <= a + size for a, b in zip(starts, starts[1:]))


def box(x, y, w, h, **kw) -> BoxAnnotation:
    return BoxAnnotation(id=0, image_id=0, category_id=1, bbox=(x, y, w, h), area=w * h, **kw)


def test_keep_rule_threshold():
    corner = (100, 0, 740, 512)
    # 10x10 box with 5 columns inside: sqrt(50)/sqrt(100) = 0.707 >= 0.7 -> kept, shifted, clipped
    kept = clip_to_tile(box(95, 20, 10, 10), corner)
    assert kept is not None and kept.bbox == (0.0, 20.0, 5.0, 10.0) and kept.area == 50.0
    # 4.8 columns inside: sqrt(48)/sqrt(100) = 0.693 < 0.7 -> dropped
    assert clip_to_tile(box(94.8, 20, 10, 10), corner) is None
    assert clip_to_tile(box(0, 0, 10, 10), corner) is None                  # entirely outside
    assert clip_to_tile(box(95, 20, 10, 10), corner, keep_ratio=0.75) is None


def full_image_file(tmp_path):
    payload = {
        "images": [{"id": 0, "file_name": "labeled_images/a.jpg", "width": 1280, "height": 720}],
        "annotations": [
            {"id": 0, "image_id": 0, "category_id": 1, "bbox": [600.0, 100.0, 20.0, 20.0], "area": 400.0},
            {"id": 1, "image_id": 0, "category_id": 1, "bbox": [10.0, 600.0, 8.0, 8.0], "area": 64.0, "ignore": True},
        ],
        "categories": [{"id": 1, "name": "person"}],
    }
    path = tmp_path / "full.json"
    path.write_text(json.dumps(payload))
    return path


def test_cut_tiles_keeps_boxes_in_every_tile_that_covers_them(tmp_path):
    full = load_annotations(full_image_file(tmp_path))
    tiles = cut_tiles(full, (640, 512), (100, 100))
    # box 0 (x 600..620, y 100..120) lies in the tiles starting at x 0 and x 540 of row y 0
    by_tile = {im.corner: [a for a in tiles.annotations if a.image_id == im.id] for im in tiles.images}
    assert [a.bbox for a in by_tile[(0, 0, 640, 512)]] == [(600.0, 100.0, 20.0, 20.0)]
    assert [a.bbox for a in by_tile[(540, 0, 1180, 512)]] == [(60.0, 100.0, 20.0, 20.0)]
    # box 1 (y 600..608) is only in the second row (y 208..720), tile x 0; it keeps its ignore flag
    assert [(a.bbox, a.ignore) for a in by_tile[(0, 208, 640, 720)]] == [((10.0, 392.0, 8.0, 8.0), True)]
    assert len(tiles.images) == 3                                        # empty tiles dropped
    assert [im.id for im in tiles.images] == [0, 1, 2] and [a.id for a in tiles.annotations] == [0, 1, 2]
    assert {im.file_name for im in tiles.images} == {"labeled_images/a.jpg"}
    assert len(cut_tiles(full, (640, 512), (100, 100), keep_empty=True).images) == 6


def test_tiles_command_writes_a_loadable_tile_file(tmp_path, capsys):
    out = tmp_path / "tiles.json"
    assert main(["tiles", str(full_image_file(tmp_path)), str(out), "--overlap", "100", "100"]) == 0
    tiles = load_annotations(out)
    assert [im.corner for im in tiles.images] == [(0, 0, 640, 512), (540, 0, 1180, 512), (0, 208, 640, 720)]
    assert "3 tiles, 3 boxes" in capsys.readouterr().out
    # each kept box, shifted back by its corner, is the original box
    for ann in tiles.annotations:
        x1, y1 = tiles.image_by_id[ann.image_id].corner[:2]
        assert math.isclose(ann.bbox[0] + x1, 600.0) or math.isclose(ann.bbox[0] + x1, 10.0)


def test_tiles_command_reports_bad_input(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert main(["tiles", str(bad), str(tmp_path / "out.json")]) == 2
    assert "bad.json: file: malformed JSON" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()
