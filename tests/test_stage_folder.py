"""A stage's folder is a safe record (issue 12): one writer, inputs checked before anything is
written, finished only with a complete final checkpoint, no stray temporary files."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

import tinysm
from engine_support import one_torch_thread, toy_config, write_toy_dataset  # noqa: F401 (autouse fixture)
from tinysm.cli import main
from tinysm.config import ConfigError, config_to_dict
from tinysm.engine.metrics_log import read_metrics
from tinysm.engine.train import train

SMALL = {"detector_options": {"fpn_channels": 32}}
SOURCE_ROOT = str(Path(tinysm.__file__).resolve().parents[1])

# A second process that trains the stage and stops before its first step until told to go on.
PAUSED_TRAINER = """
import sys, time
from pathlib import Path
import torch
import tinysm.engine.train as engine_train
from tinysm.engine.config import load_train_config

config_file, ready, go = map(Path, sys.argv[1:4])
torch.set_num_threads(1)
step = engine_train.train_one_epoch

def paused(*args, **kwargs):
    ready.write_text("training")
    deadline = time.monotonic() + 300
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return step(*args, **kwargs)

engine_train.train_one_epoch = paused
engine_train.train(load_train_config(config_file))
"""


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    write_toy_dataset(root, images=4)
    return root


def start_paused_trainer(config, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """The paused trainer on `config`, once it holds the stage; returns it and its go-file."""
    config_file, ready, go = tmp_path / "stage.yaml", tmp_path / "ready", tmp_path / "go"
    config_file.write_text(yaml.safe_dump(config_to_dict(config)))
    env = {**os.environ, "PYTHONPATH": SOURCE_ROOT, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-c", PAUSED_TRAINER, str(config_file), str(ready), str(go)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 180
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the first trainer did not start: {process.communicate()[0][-2000:]}")
        time.sleep(0.05)
    return process, go


# ----------------------------------------------------------------------------------------- one writer

def test_a_second_training_of_a_stage_is_refused_while_the_first_runs(toy_data, tmp_path, capsys):
    config = toy_config(toy_data, tmp_path / "run", max_iters=1, **SMALL)
    first, go = start_paused_trainer(config, tmp_path)
    stray = config.paths.out_dir / ".checkpoint_last.pt.k3j9x2ab.tmp"  # as if its writer were killed
    try:
        stray.write_bytes(b"half a checkpoint")
        with pytest.raises(FileExistsError, match=rf"{config.paths.out_dir} is in use by pid {first.pid} on "):
            train(config)
        config_file = tmp_path / "stage.yaml"
        assert main(["train", str(config_file)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and f"{config.paths.out_dir} is in use by pid {first.pid}" in err
        assert stray.exists()  # not the refused process's to clean
    finally:
        go.touch()
        output = first.communicate(timeout=300)[0]
    assert first.returncode == 0, output[-2000:]
    assert [r["iteration"] for r in read_metrics(config.paths.metrics)] == [1]  # one writer's log
    # The first trainer has exited: its lock went with it, and the next one cleans its stray file.
    assert train(config) == config.paths.final_checkpoint and not stray.exists()


def test_under_torchrun_every_rank_stops_when_rank_0_finds_the_stage_held(toy_data, tmp_path, monkeypatch):
    import tinysm.engine.stage_folder as stage_folder
    from tinysm.engine.distributed import DistributedContext
    from tinysm.engine.train import _train
    from tinysm.locks import FolderInUse

    config = toy_config(toy_data, tmp_path / "run", max_iters=1, **SMALL)
    held = stage_folder.StageClaim(error=("FolderInUse", f"{config.paths.out_dir} is in use by pid 7 on h"))
    monkeypatch.setattr(stage_folder, "gather_objects", lambda claim, context: [held, claim])  # rank 0's word
    monkeypatch.setattr(stage_folder, "lock_folder", lambda *args: pytest.fail("only rank 0 locks"))
    rank_1 = DistributedContext(rank=1, world_size=2, local_rank=1, device=torch.device("cpu"))
    with pytest.raises(FolderInUse, match="is in use by pid 7 on h"):
        _train(config, rank_1)
    assert not config.paths.out_dir.exists()


@pytest.mark.slow
def test_under_torchrun_a_held_stage_stops_both_ranks_with_one_line(toy_data, tmp_path):
    from tinysm.locks import lock_folder

    config = toy_config(toy_data, tmp_path / "run", max_iters=1, **SMALL)
    config_file = tmp_path / "stage.yaml"
    config_file.write_text(yaml.safe_dump(config_to_dict(config)))
    env = {**os.environ, "PYTHONPATH": SOURCE_ROOT, "OMP_NUM_THREADS": "1"}
    with lock_folder(config.paths.out_dir, "the test"):
        run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                              "2", "-m", "tinysm", "train", str(config_file)],
                             capture_output=True, text=True, env=env, timeout=240)
    assert run.returncode != 0
    said = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("tinysm train: error:")]
    assert len(said) == 1 and f"is in use by pid {os.getpid()}" in said[0], run.stderr[-3000:]
    assert sorted(p.name for p in config.paths.out_dir.iterdir()) == [".tinysm.lock"]


# ------------------------------------------------------------------------------ inputs before writes

@pytest.mark.parametrize("key, values", [
    ("train_annotations", {"train_annotations": "annotation.json"}),
    ("train_images", {"train_images": "image"}),
    ("eval_images", {"eval_annotations": "annotations.json", "eval_images": "imgs"}),
    ("init_from", {"init_from": "pretrain/model_final.pt"}),
    ("sm_target_annotations", {"scale_match": "sm", "sm_target_annotations": "tiny_set_train.json"}),
])
def test_a_typo_in_an_input_path_leaves_no_folder_behind(toy_data, tmp_path, key, values):
    config = toy_config(toy_data, tmp_path / "run", max_iters=1,
                        **{k: str(toy_data / v) if k != "scale_match" else v for k, v in values.items()}, **SMALL)
    with pytest.raises(FileNotFoundError, match=rf"{key} {toy_data / values[key]} \(no such (file|folder)\)"):
        train(config)
    assert not config.paths.out_dir.exists()  # so the corrected command finds nothing to refuse


def test_cli_names_every_missing_input_in_one_line_before_writing(toy_data, tmp_path, capsys):
    config = toy_config(toy_data, tmp_path / "run", train_images=str(toy_data / "image"),
                        eval_annotations=str(toy_data / "test.json"), eval_images=str(toy_data / "images"))
    config_file = tmp_path / "stage.yaml"
    config_file.write_text(yaml.safe_dump(config_to_dict(config)))
    assert main(["train", str(config_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "train_images" in err and "eval_annotations" in err
    assert not config.paths.out_dir.exists()


def test_detector_options_are_checked_with_the_config():
    with pytest.raises(ConfigError, match=r"'detector_options' do not fit 'adaptive_retinanet': unknown key\(s\) "
                                          r"\['fpn_channel'\]"):
        toy_config(Path("data"), Path("run"), detector_options={"fpn_channel": 32})


def test_a_folder_whose_run_never_reached_a_checkpoint_takes_the_corrected_config(toy_data, tmp_path):
    # What a run stopped by a bad input before its first checkpoint leaves behind: its config alone.
    typo = toy_config(toy_data, tmp_path / "run", max_iters=1, lr_per_image=0.5, **SMALL)
    typo.paths.out_dir.mkdir()
    typo.paths.config.write_text(yaml.safe_dump(config_to_dict(typo)))
    corrected = toy_config(toy_data, tmp_path / "run", max_iters=1, **SMALL)
    train(corrected)
    assert yaml.safe_load(corrected.paths.config.read_text())["lr_per_image"] == 0.005


# ----------------------------------------------------------------------------- finished means complete

@pytest.mark.parametrize("damage", ["truncated", "one byte changed"])
def test_a_damaged_final_checkpoint_is_finished_again_from_the_last_one(toy_data, tmp_path, capsys, damage):
    config = toy_config(toy_data, tmp_path / "run", max_iters=2, **SMALL)
    final = train(config)
    weights = torch.load(final, weights_only=True)["model"]
    data = bytearray(final.read_bytes())
    if damage == "truncated":
        del data[len(data) // 2:]
    else:
        data[len(data) // 2] ^= 0xFF
    final.write_bytes(bytes(data))
    capsys.readouterr()
    assert train(config) == final
    assert "is not a complete final checkpoint" in capsys.readouterr().out
    again = torch.load(final, weights_only=True)["model"]
    assert all(torch.equal(weights[name], again[name]) for name in weights)  # the same model, not retrained
    assert [r["iteration"] for r in read_metrics(config.paths.metrics)] == [1, 2]


def test_a_damaged_final_checkpoint_without_a_last_one_says_what_to_delete(toy_data, tmp_path):
    config = toy_config(toy_data, tmp_path / "run", max_iters=1, **SMALL)
    final = train(config)
    final.write_bytes(final.read_bytes()[:1000])
    config.paths.last_checkpoint.unlink()
    with pytest.raises(RuntimeError, match=r"model_final\.pt is not a complete final checkpoint .* delete "
                                           r"model_final\.pt, finished\.json and checkpoint_last\.pt in .*run"):
        train(config)


def test_a_finished_stage_is_not_reused_for_another_max_iters(toy_data, tmp_path):
    config = toy_config(toy_data, tmp_path / "run", max_iters=1, **SMALL)
    train(config)
    recorded = config.paths.config.read_text()
    with pytest.raises(FileExistsError, match=r"finished stage of another config \(differs in \['max_iters'\]\)"):
        train(toy_config(toy_data, tmp_path / "run", max_iters=2, **SMALL))
    assert config.paths.config.read_text() == recorded  # the record is still the config that ran
    # how it runs is not what it computes: a finished stage is reused with other workers or logging
    assert train(toy_config(toy_data, tmp_path / "run", max_iters=1, log_every=5, **SMALL)).is_file()
    assert config.paths.config.read_text() == recorded


def test_a_stage_recorded_before_a_key_existed_is_reused_when_that_key_keeps_its_default(toy_data, tmp_path):
    config = toy_config(toy_data, tmp_path / "run", max_iters=1, **SMALL)
    final = train(config)
    before = final.stat().st_mtime_ns
    older = {k: v for k, v in yaml.safe_load(config.paths.config.read_text()).items() if k != "backbone_freezing"}
    config.paths.config.write_text(yaml.safe_dump(older))
    assert train(config) == final and final.stat().st_mtime_ns == before  # reused, not retrained
    with pytest.raises(FileExistsError, match=r"differs in \['backbone_freezing'\]"):
        train(toy_config(toy_data, tmp_path / "run", max_iters=1, backbone_freezing="none", **SMALL))


# ------------------------------------------------------------------------------- stray temporary files

def test_stray_temporary_files_of_the_stage_are_removed_when_it_starts(toy_data, tmp_path):
    config = toy_config(toy_data, tmp_path / "run", max_iters=1, **SMALL)
    out = config.paths.out_dir
    (out / "notes").mkdir(parents=True)
    stray = [out / ".checkpoint_last.pt.k3j_9x2a.tmp", out / ".metrics.jsonl.a1b2c3d4.tmp"]
    others = [out / "notes.tmp", out / ".checkpoint_last.pt.tmp", out / "notes" / ".model_final.pt.k3j_9x2a.tmp"]
    for path in stray + others:
        path.write_bytes(b"left behind")
    train(config)
    assert [p.exists() for p in stray] == [False, False]
    assert all(p.exists() for p in others)  # only atomic writes' temporary names, only in that folder
