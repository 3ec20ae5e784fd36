"""No command writes over an input it reads (issue: reliability): outputs are compared with inputs
after following symbolic links, before anything is written, and the refusal is one line."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tinysm.cli import main

from test_datasets import write_dataset
from test_evaluation_inputs import GT, good


def fingerprint(root: Path) -> dict[str, str]:
    """SHA-256 of every file under `root` (links followed), by relative path."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def refused(argv: list[str], capsys, *words: str) -> None:
    """`tinysm argv` exits 2 with one line on stderr that holds every word."""
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "Traceback" not in error, error
    for word in words:
        assert word in error, error


def test_erase_refuses_an_output_folder_that_reaches_the_originals_through_a_link(tmp_path, capsys):
    path, root, _ = write_dataset(tmp_path)
    before = fingerprint(tmp_path)
    (tmp_path / "erased").symlink_to(root, target_is_directory=True)
    refused(["erase", str(path), str(root), str(tmp_path / "erased")], capsys,
            "labeled_images/a.png", "original image of image id 0", "would destroy")
    refused(["erase", str(path), str(root), str(root)], capsys, "would destroy")  # in place, plainly
    assert fingerprint(tmp_path) == before


def test_erase_refuses_to_write_its_annotations_over_the_input_file(tmp_path, capsys):
    path, root, _ = write_dataset(tmp_path)
    (tmp_path / "link.json").symlink_to(path)
    before = fingerprint(tmp_path)
    out_root = tmp_path / "erased"
    for target in (path, tmp_path / "link.json"):
        refused(["erase", str(path), str(root), str(out_root), "--annotations-out", str(target)], capsys,
                "input annotation file", "would destroy")
    assert fingerprint(tmp_path) == before and not out_root.exists()  # refused before any image was written


def test_tiles_refuses_to_write_over_its_input(tmp_path, capsys):
    path, _, _ = write_dataset(tmp_path)
    (tmp_path / "alias.json").symlink_to(path)
    before = fingerprint(tmp_path)
    refused(["tiles", str(path), str(path)], capsys, "input annotation file", "would destroy")
    refused(["tiles", str(path), str(tmp_path / "alias.json")], capsys, "would destroy")
    assert fingerprint(tmp_path) == before


@pytest.mark.parametrize("victim", ["gt", "results"])
def test_evaluate_refuses_to_write_metrics_over_an_input(tmp_path, capsys, victim):
    paths = {"gt": tmp_path / "gt.json", "results": tmp_path / "results.json"}
    paths["gt"].write_text(json.dumps(GT))
    paths["results"].write_text(json.dumps([good()]))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "metrics.json").symlink_to(paths[victim])
    before = fingerprint(tmp_path)
    for json_out in (paths[victim], tmp_path / "out" / "metrics.json"):
        refused(["evaluate", str(paths["gt"]), str(paths["results"]), "--json", str(json_out)], capsys,
                "would destroy")
    assert fingerprint(tmp_path) == before
    assert main(["evaluate", str(paths["gt"]), str(paths["results"]), "--json", str(tmp_path / "m.json")]) == 0
