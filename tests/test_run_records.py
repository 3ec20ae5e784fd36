"""An experiment's run folder is a safe record (issue 12): one writer from `start_run` to the end of
`evaluate`, every input checked before anything is written, a stage reused only for the config
it records."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import tinysm
from experiment_support import write_data_layout
from tinysm.config import config_to_dict
from tinysm.experiments.config import ExperimentConfig, load_experiment_config
from tinysm.experiments.stages import stage_config
from tinysm.paths import repo_root

SOURCE_ROOT = str(Path(tinysm.__file__).resolve().parents[1])

# Another notebook kernel: starts the run (its first cells), then waits before its training cell.
STARTED_NOTEBOOK = """
import sys, time
from pathlib import Path
from tinysm.experiments.config import load_experiment_config
from tinysm.experiments.run import start_run

params, runs_dir, data_root, ready, go = sys.argv[1:6]
start_run(load_experiment_config(params, {"runs_dir": runs_dir, "data_root": data_root, "backbone_weights": None}))
Path(ready).write_text("started")
deadline = time.monotonic() + 300
while not Path(go).exists() and time.monotonic() < deadline:
    time.sleep(0.05)
"""


def row(name: str, tmp_path: Path, **overrides) -> ExperimentConfig:
    """A paper row writing under `tmp_path`, with no weights to download."""
    return load_experiment_config(repo_root() / "params" / "paper" / f"{name}.yaml",
                                  {"runs_dir": str(tmp_path / "runs"), "data_root": str(tmp_path / "data"),
                                   "backbone_weights": None, **overrides})


def finish_stage_by_hand(config: ExperimentConfig, stage: str) -> Path:
    """What `train` leaves in a stage folder it finished: its config, final checkpoint and record."""
    from tinysm.engine.stage_folder import check_run_folder, write_finished

    stage_cfg = stage_config(config, stage)
    stage_cfg.paths.out_dir.mkdir(parents=True)
    check_run_folder(stage_cfg, stage_cfg.paths)
    stage_cfg.paths.final_checkpoint.write_bytes(b"pre-trained weights")
    write_finished(stage_cfg.paths, iteration=10)
    return stage_cfg.paths.final_checkpoint


# ---------------------------------------------------------------------- a stage reused for its config

def test_a_finished_pretraining_is_reused_only_for_the_config_it_recorded(tmp_path):
    from tinysm.experiments.run import run_stage, start_run

    write_data_layout(tmp_path / "data")
    ran = row("exp4.0", tmp_path)
    start_run(ran)
    final = finish_stage_by_hand(ran, "pretrain")
    recorded = (ran.run_dir / "config.yaml").read_text()

    changed = row("exp4.0", tmp_path, pretrain_lr_per_image=0.01)
    with pytest.raises(FileExistsError, match=r"pretrain: .* holds a finished stage of another config \(differs in "
                                              r"\['lr_per_image'\]\); set overwrite: true"):
        start_run(changed)
    assert (ran.run_dir / "config.yaml").read_text() == recorded  # no record of a config that never ran
    with pytest.raises(FileExistsError, match=r"differs in \['lr_per_image'\]"):
        run_stage(changed, "pretrain")

    # What it computes is what counts: other workers or logging reuse the stage.
    assert run_stage(row("exp4.0", tmp_path, workers=1, log_every=5), "pretrain") == final
    assert run_stage(ran, "pretrain") == final


def test_a_stage_with_a_damaged_final_checkpoint_is_not_reused(tmp_path, monkeypatch):
    import tinysm.engine.train as engine_train
    from tinysm.experiments.run import run_stage

    write_data_layout(tmp_path / "data")
    config = row("exp4.0", tmp_path, pretrain_gpus=1)
    final = finish_stage_by_hand(config, "pretrain")
    final.write_bytes(b"pre-trained")  # truncated
    trained = []
    monkeypatch.setattr(engine_train, "train", lambda stage: trained.append(stage) or stage.paths.final_checkpoint)
    run_stage(config, "pretrain")
    assert len(trained) == 1  # handed to the engine, which finishes it again (tests/test_stage_folder.py)


# ------------------------------------------------------------------------------ inputs before writes

def test_a_data_root_without_the_runs_inputs_leaves_no_run_folder_behind(tmp_path):
    from tinysm.experiments.run import start_run

    config = row("exp4.0", tmp_path, data_root=str(tmp_path / "dta"))  # a typo
    with pytest.raises(FileNotFoundError, match=r"exp4\.0: data_root .*dta' lacks what the run reads, nothing was "
                                                r"written: pretrain train_annotations .*instances_merge2017\.json"):
        start_run(config)
    assert not (tmp_path / "runs").exists()

    write_data_layout(tmp_path / "data")
    tiny_test_images = tmp_path / "data" / "tiny_set" / "test"
    tiny_test_images.rmdir()
    with pytest.raises(FileNotFoundError, match=rf"evaluation test images {tiny_test_images}$"):
        start_run(row("exp1.2", tmp_path))
    assert not (tmp_path / "runs").exists()


# ----------------------------------------------------------------------------------------- one writer

def test_a_run_folder_another_process_started_is_refused_even_with_overwrite(tmp_path):
    from tinysm.experiments.run import run_stage, start_run

    write_data_layout(tmp_path / "data")
    config = row("exp1.2", tmp_path, overwrite=True)
    ready, go = tmp_path / "ready", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": SOURCE_ROOT, "OMP_NUM_THREADS": "1"}
    other = subprocess.Popen([sys.executable, "-c", STARTED_NOTEBOOK, str(repo_root() / "params/paper/exp1.2.yaml"),
                              str(tmp_path / "runs"), str(tmp_path / "data"), str(ready), str(go)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        while not ready.exists():
            assert other.poll() is None and time.monotonic() < deadline, other.communicate()[0][-2000:]
            time.sleep(0.05)
        stage_file = config.run_dir / "finetune" / "metrics.jsonl"
        stage_file.parent.mkdir()
        stage_file.write_text('{"iteration": 1}\n')  # the other run's training, under way
        with pytest.raises(FileExistsError, match=rf"{config.run_dir} is in use by pid {other.pid} on .*"
                                                  r"\(experiment exp1\.2\)"):
            start_run(config)
        with pytest.raises(FileExistsError, match=rf"is in use by pid {other.pid}"):
            run_stage(config, "finetune")
        assert stage_file.read_text() == '{"iteration": 1}\n'  # overwrite did not delete it
    finally:
        go.touch()
        other.communicate(timeout=120)
    assert other.returncode == 0
    start_run(config)  # its holder has exited: the folder is free, nothing stale to delete by hand
    assert not stage_file.exists()


def test_the_run_folder_is_held_from_start_run_to_the_end_of_evaluate(tmp_path, monkeypatch):
    """A notebook claims the folder in one cell and writes in later ones: a second claim from this
    process (a cell run again) is its own, any other is refused until evaluate has finished."""
    import tinysm.data.datasets
    import tinysm.engine.predict
    import tinysm.evaluation
    from tinysm.experiments import run as experiment
    from tinysm.locks import FolderInUse, holds_folder, lock_folder

    write_data_layout(tmp_path / "data")
    config = row("exp1.2", tmp_path)
    experiment.start_run(config)
    experiment.start_run(config)  # the same kernel, the cell run again
    with pytest.raises(FolderInUse):
        lock_folder(config.run_dir, "another writer")  # what another process meets

    class Scored:
        metrics = {"AP50_tiny": 1.0}

    monkeypatch.setattr(experiment, "evaluation_set", lambda config: type("Set", (), {"images": [1]})())
    monkeypatch.setattr(experiment, "load_trained_detector", lambda checkpoint, device: None)
    monkeypatch.setattr(tinysm.engine.predict, "predict", lambda *args, **kwargs: [])
    monkeypatch.setattr(tinysm.evaluation, "evaluate_tiny", lambda *args, **kwargs: Scored())
    monkeypatch.setattr(tinysm.data.datasets, "DetectionDataset", lambda test: test)
    experiment.evaluate(config, tmp_path / "model_final.pt")
    assert (config.run_dir / "metrics.json").is_file() and not holds_folder(config.run_dir)
    lock_folder(config.run_dir, "the next writer").release()


def test_a_refused_start_leaves_the_finished_runs_files_as_they_were(tmp_path):
    from tinysm.experiments.run import start_run

    write_data_layout(tmp_path / "data")
    config = row("exp1.2", tmp_path)
    run_dir = start_run(config)
    (run_dir / "metrics.json").write_text('{"metrics": {}}')
    (run_dir / "experiment.ipynb").write_text("the record")
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    with pytest.raises(FileExistsError, match="holds a finished run"):
        start_run(row("exp1.2", tmp_path, epochs=3))
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
    assert yaml.safe_load((run_dir / "config.yaml").read_text()) == config_to_dict(config)
