"""`tinysm sizes`: statistics printed and the histogram written as JSON (reference §3)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from size_fixtures import coco_with_sizes
from tinysm.cli import main


def write(path, boxes, width=100, height=50):
    """A one-image COCO file with these [x, y, w, h] boxes (flags optional)."""
    annotations = [{"id": i, "image_id": 0, "category_id": 1, "bbox": bbox, **flags}
                   for i, (bbox, flags) in enumerate(boxes)]
    path.write_text(json.dumps({"images": [{"id": 0, "file_name": "a.jpg", "width": width, "height": height}],
                                "annotations": annotations}))
    return path


def test_statistics_and_histogram_by_hand(tmp_path, capsys):
    # Counted boxes 1×4, 3×3, 8×2 (sizes 2, 3, 4; aspect 0.25, 1, 4); the crowd and ignore boxes are left out.
    target = write(tmp_path / "tiny.json", [([0, 0, 1, 4], {}), ([5, 5, 3, 3], {}), ([0, 0, 8, 2], {}),
                                            ([0, 0, 40, 40], {"iscrowd": 1}), ([0, 0, 9, 9], {"ignore": True})])
    assert main(["sizes", str(target), "--bins", "2", "--tail-rate", "0", "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "sizes.png").is_file()  # the target alone
    printed = capsys.readouterr().out
    # size mean 3, population std √(2/3) = 0.82; aspect mean 1.75, std √((1.5² + 0.75² + 2.25²)/3) = 1.62
    assert "3.00 ± 0.82" in printed and "1.75 ± 1.62" in printed
    record = json.loads((tmp_path / "out" / "tiny.sizes.json").read_text())
    assert record["statistics"]["boxes"] == 3 and record["statistics"]["size_p50"] == 3
    assert record["statistics"]["relative_size_mean"] == pytest.approx(3 / np.sqrt(5000))
    # sizes 2, 3, 4 in two bins [2, 3), [3, 4]
    assert record["histogram"]["edges"] == [2, 3, 4] and record["histogram"]["probs"] == [1 / 3, 2 / 3]


def test_source_gets_its_own_row_and_file(tmp_path, capsys):
    target = tmp_path / "target.json"
    source = tmp_path / "source.json"
    target.write_text(json.dumps(coco_with_sizes(0, 4, 30, 2.0, 0.5)))
    source.write_text(json.dumps(coco_with_sizes(1, 4, 30, 4.0, 0.5)))
    assert main(["sizes", str(target), "--source", str(source), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "target.json" in printed and "source.json" in printed
    for name in ("target", "source"):
        histogram = json.loads((tmp_path / f"{name}.sizes.json").read_text())["histogram"]
        assert len(histogram["edges"]) == 101 and sum(histogram["probs"]) == pytest.approx(1.0)
    # The figure it promises: the source before and after each size-matching method (4 panels).
    assert (tmp_path / "sizes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {tmp_path / 'sizes.png'}" in printed


def test_bad_input_is_one_clean_error_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"images": [], "annotations": [{"id": 0}]}))
    assert main(["sizes", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.json" in err and "missing required key 'image_id'" in err
    few = write(tmp_path / "one.json", [([0, 0, 2, 2], {})])
    assert main(["sizes", str(few)]) == 2
    assert "one.json: 1 positive sizes are too few" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    twin = write(tmp_path / "other" / "one.json", [([0, 0, 2, 2], {})])
    assert main(["sizes", str(few), "--source", str(twin)]) == 2
    assert "both named 'one'" in capsys.readouterr().err


def test_a_target_of_one_size_gets_numpys_widened_histogram(tmp_path, capsys):
    # Twelve 4×4 boxes (all of size 4), K = 5, e = 1/3: lo = 2, hi = 10. numpy spreads the middle
    # eight over [3.5, 4.5] in 3 bins; the tail edges (4) lie inside that range (reference §3).
    target = write(tmp_path / "same.json", [([3 * i, 0, 4, 4], {}) for i in range(12)])
    source = tmp_path / "source.json"
    source.write_text(json.dumps(coco_with_sizes(1, 4, 30, 4.0, 0.5)))
    out = tmp_path / "out"
    assert main(["sizes", str(target), "--source", str(source), "--bins", "5", "--tail-rate", str(1 / 3),
                 "--out", str(out)]) == 0
    histogram = json.loads((out / "same.sizes.json").read_text())["histogram"]
    np.testing.assert_allclose(histogram["edges"], [4, 3.5, 3.5 + 1 / 3, 3.5 + 2 / 3, 4.5, 4])
    np.testing.assert_allclose(histogram["probs"], [2 / 12, 0, 8 / 12, 0, 2 / 12])
    assert (out / "sizes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # SM and MSM onto it, drawn
