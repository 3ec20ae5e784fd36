"""No traceback for expected failures (issue 12): every expected failure of a command (bad input,
a missing file, permission denied, a full disk, a folder where a file goes, a name too long, a NUL
byte, a device that is not there, a malformed value) ends with one line
`tinysm <command>: error: ...` naming the file or key, exit code 2, and leaves every input and every
file already written as it was; the experiment notebook's validating cell fails with one line."""
from __future__ import annotations

import errno
import json
import pathlib
from pathlib import Path

import nbformat
import pytest
import torch

from tinysm.cli import main
from tinysm.engine.distributed import resolve_device
from tinysm.paths import repo_root

from test_evaluation_inputs import GT, good
from test_inputs_never_overwritten import fingerprint


def fails(argv: list[str], capsys: pytest.CaptureFixture[str], *words: str) -> str:
    """`tinysm argv` exits 2 with exactly one stderr line, `tinysm <command>: error: ...`, holding
    every word; returns that line."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith(f"tinysm {argv[0]}: error: "), err
    for word in words:
        assert word in err, err
    return err


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """gt.json (two images, 0 and 7) and results.json covering both, in `tmp_path`."""
    (tmp_path / "gt.json").write_text(json.dumps(GT))
    (tmp_path / "results.json").write_text(json.dumps([good(), good(image_id=7, bbox=[50, 50, 20, 20])]))
    return tmp_path


# ----------------------------------------------------------------------------- the error boundary


def test_an_output_path_that_is_a_folder_fails_before_any_work(files, capsys):
    (files / "out").mkdir()
    before = fingerprint(files)
    fails(["evaluate", str(files / "gt.json"), str(files / "results.json"), "--json", str(files / "out")], capsys,
          f"{files / 'out'}: is a folder, but --json takes a file name")
    fails(["tiles", str(files / "gt.json"), str(files / "out")], capsys, f"{files / 'out'}: is a folder")
    fails(["evaluate", str(files / "gt.json"), str(files / "out")], capsys,
          f"{files / 'out'}: file: cannot be read (Is a directory)")
    fails(["sizes", str(files / "gt.json"), "--out", str(files / "gt.json")], capsys,
          f"{files / 'gt.json'}: is a file, but --out takes a folder")
    assert fingerprint(files) == before


def test_missing_files_and_long_names_are_named(files, capsys):
    before = fingerprint(files)
    fails(["evaluate", str(files / "nope.json"), str(files / "results.json")], capsys,
          f"{files / 'nope.json'}: file: does not exist")
    long_name = files / ("m" * 300 + ".json")
    fails(["evaluate", str(files / "gt.json"), str(files / "results.json"), "--json", str(long_name)], capsys,
          f"{long_name}: File name too long")
    fails(["config", str(files / "none.yaml")], capsys, f"{files / 'none.yaml'}: params file does not exist")
    assert fingerprint(files) == before


def test_a_nul_byte_names_its_argument(files, capsys):
    before = fingerprint(files)
    fails(["evaluate", str(files / "gt.json"), str(files / "results\0.json")], capsys,
          "argument results:", "contains a NUL byte")
    params = files / "params.yaml"
    params.write_text('runs_dir: "runs\\0x"\n')  # YAML's escape for a NUL byte
    fails(["config", str(params)], capsys, str(params), "'runs_dir' contains a NUL byte")
    params.unlink()
    assert fingerprint(files) == before


def test_a_full_disk_names_the_file_and_keeps_what_was_there(files, capsys, monkeypatch):
    metrics = files / "metrics.json"
    metrics.write_text('{"AP50_tiny": 50.0}')  # a previous evaluation's file
    before = fingerprint(files)

    def disk_full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")  # a failed write names no file
    monkeypatch.setattr(pathlib.Path, "write_bytes", disk_full)
    fails(["evaluate", str(files / "gt.json"), str(files / "results.json"), "--json", str(metrics)], capsys,
          f"{metrics}: No space left on device (the disk is full)")
    assert fingerprint(files) == before and sorted(p.name for p in files.iterdir()) == [
        "gt.json", "metrics.json", "results.json"]  # the old file intact, no temporary left


def test_permission_denied_names_the_file(files, capsys, monkeypatch):
    gt = files / "gt.json"
    real_read = pathlib.Path.read_bytes

    def denied(self):
        if self == gt:  # as root a chmod would not stop the read: the system's error, injected
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_read(self)
    monkeypatch.setattr(pathlib.Path, "read_bytes", denied)
    fails(["evaluate", str(gt), str(files / "results.json")], capsys, f"{gt}: Permission denied")


def test_malformed_values_and_missing_devices_name_the_key(files, capsys):
    params = files / "train.yaml"
    params.write_text(f"detector: faster_fpn\ntrain_annotations: {files / 'gt.json'}\ntrain_images: {files}\n"
                      f"out_dir: {files / 'run'}\nbackbone: resnet18\ndevice: gpu\n")
    before = fingerprint(files)
    fails(["train", str(params)], capsys, str(params), "'device' must be one of auto, cpu, cuda, cuda:N, got 'gpu'")
    fails(["train", str(params), "--set", "epochs=[1"], capsys, "--set 'epochs=[1': the value is not valid YAML")
    fails(["train", str(params), "--set", "device=cpu", "--set", "epochs=two"], capsys,
          str(params), "'epochs' must be an integer, got 'two'")
    missing = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU, or the first of none
    fails(["train", str(params), "--set", f"device={missing}"], capsys, f"'device' is '{missing}'",
          "available here: cpu")
    assert fingerprint(files) == before and not (files / "run").exists()


def test_resolve_device_names_the_key_and_what_is_there():
    with pytest.raises(ValueError, match=r"^'device' must be one of auto, cpu, cuda, cuda:N, got 'gpu' "
                                         r"\(available here: cpu"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"^'device' is 'cuda', but CUDA is not available here \(available here: cpu\)$"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match=r"'device' is 'cuda:99'.*available here: cpu"):
        resolve_device("cuda:99")
    assert resolve_device("cpu") == torch.device("cpu")


def test_unexpected_exceptions_keep_their_traceback(files, monkeypatch):
    import tinysm.evaluation

    def broken(*args, **kwargs):
        raise RuntimeError("a bug, not bad input")
    monkeypatch.setattr(tinysm.evaluation, "evaluate_tiny", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["evaluate", str(files / "gt.json"), str(files / "results.json")])


# ----------------------------------------------------------------------------- the notebook


def validating_cells(parameters: dict) -> dict:
    """Run the experiment notebook's cells up to its validating cell with `parameters` injected
    where papermill puts them; the namespace they leave."""
    cells = [c for c in nbformat.read(repo_root() / "notebooks" / "experiment.ipynb", as_version=4).cells
             if c.cell_type == "code"]
    namespace: dict = {}
    exec(cells[0].source, namespace)
    exec(cells[1].source, namespace)  # the parameters cell's defaults
    namespace.update(parameters)
    exec(cells[2].source, namespace)
    return namespace


@pytest.mark.parametrize("overrides, words", [
    ({"device": "gpu"}, ["faster_fpn-sm-s0.yaml", "'device' must be one of auto, cpu, cuda, cuda:N, got 'gpu'"]),
    ({"experiment": "run\0x"}, ["faster_fpn-sm-s0.yaml", "'experiment' contains a NUL byte"]),
    ({"epochs": "two"}, ["faster_fpn-sm-s0.yaml", "'epochs' must be an integer, got 'two'"]),
], ids=["no such device", "NUL byte", "malformed value"])
def test_the_notebooks_validating_cell_fails_with_one_line(tmp_path, overrides, words):
    runs = tmp_path / "runs"
    with pytest.raises(ValueError) as info:
        validating_cells({"params": "params/cpu/faster_fpn-sm-s0.yaml", "overrides": {"runs_dir": str(runs), **overrides}})
    message = str(info.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, message
    assert not runs.exists()  # nothing started
