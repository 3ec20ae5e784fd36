"""One experiment of the paper's table: pre-training (optional) -> fine-tuning -> tiled evaluation.

Everything lands in `<runs_dir>/<experiment>/` (docs/architecture.md):
```
config.yaml              the ExperimentConfig, as validated
pretrain/, finetune/     one engine stage each: config.yaml, metrics.jsonl, checkpoints
results.json             COCO detections on the test images (tiled inference, reference §2.3)
metrics.json             written last, atomically: its presence marks a finished run
experiment.ipynb         the executed notebook (written by papermill)
```
A finished run is never replaced unless the config says `overwrite: true`; an interrupted one is
resumed: a finished stage is reused when the config it records is the one asked for, and refused
otherwise. Everything is checked before anything is written: the config, then the files its stages
and its evaluation read, then the run folder is locked (`tinysm.locks`), and only then written.

The lock is the process's from `start_run` until `evaluate` has written metrics.json: a notebook
holds it across its cells (a cell run again in the same kernel finds the folder its own), a second
notebook or command on the same run is refused with one line naming the holder, and a kernel that
dies gives it back.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tinysm.config import config_to_dict
from tinysm.data.layout import layouts
from tinysm.engine.config import RunPaths, TrainConfig, check_inputs, missing_inputs
from tinysm.engine.stage_folder import is_finished, record_conflict
from tinysm.experiments.config import ExperimentConfig
from tinysm.experiments.stages import STAGES, stage_config, stage_gpus
from tinysm.io import atomic_write_json, atomic_write_text, remove_stray_temporaries
from tinysm.locks import hold_folder, holding_folder, holds_folder, lock_folder, release_folder
from tinysm.paths import repo_root

REDO = "set overwrite: true (tinysm reproduce --force) to redo it"


def planned_stages(config: ExperimentConfig) -> dict[str, TrainConfig]:
    """The engine config of each stage the experiment runs, in order; fine-tuning starts from the
    pre-training's final checkpoint, as `pretrain` then `finetune` run them."""
    stages = {}
    init_from = None
    if config.pretrain != "none":
        stages["pretrain"] = stage_config(config, "pretrain")
        init_from = stages["pretrain"].paths.final_checkpoint
    stages["finetune"] = stage_config(config, "finetune", init_from)
    return stages


def check_run_inputs(config: ExperimentConfig, stages: dict[str, TrainConfig]) -> None:
    """Every file the stages and the evaluation read is there (a stage's `init_from` is the previous
    stage's output, not an input); one line naming all that are missing."""
    tiny_set, _ = layouts(config.data_dir)
    missing = [f"{stage} {problem}" for stage, stage_cfg in stages.items()
               for problem in missing_inputs(stage_cfg, skip=("init_from",))]
    for name, path, is_there in (("test annotations", tiny_set.test_annotations, tiny_set.test_annotations.is_file()),
                                 ("test images", tiny_set.test_images, tiny_set.test_images.is_dir())):
        if not is_there:
            missing.append(f"evaluation {name} {path}")
    if missing:
        raise FileNotFoundError(f"{config.experiment}: data_root '{config.data_root}' lacks what the run "
                                f"reads, nothing was written: {'; '.join(missing)}")


def refuse_finished(config: ExperimentConfig) -> None:
    finished = config.run_dir / "metrics.json"
    if finished.exists() and not config.overwrite:
        raise FileExistsError(f"{config.run_dir} holds a finished run ({finished.name}); set overwrite: true "
                              "(tinysm reproduce --force) to run it again")


def check_stage_records(stages: dict[str, TrainConfig]) -> None:
    """Refuse a stage folder recording another config than the one asked for (finished or not)."""
    for stage, stage_cfg in stages.items():
        conflict = record_conflict(stage_cfg, stage_cfg.paths, is_finished(stage_cfg.paths))
        if conflict is not None:
            raise FileExistsError(f"{stage}: {conflict}; {REDO}")


def _what(config: ExperimentConfig) -> str:
    return f"experiment {config.experiment}"


def start_run(config: ExperimentConfig) -> Path:
    """Check that the run can go ahead (backbone weights, every input file, no finished run, stages
    recording this config), then hold the run folder, clear a run being redone, record the config.

    Nothing is written, and no folder made, when a check fails; the folder stays this process's
    until `evaluate` has finished (see the module's docstring).
    """
    from tinysm.models.backbone import check_backbone_weights

    run_dir = config.run_dir
    refuse_finished(config)
    check_backbone_weights(config.backbone, config.backbone_weights)
    stages = planned_stages(config)
    check_run_inputs(config, stages)
    held_before = holds_folder(run_dir)
    hold_folder(run_dir, _what(config))
    try:
        refuse_finished(config)  # again, now that no one else can finish it meanwhile
        if config.overwrite:
            # Only this experiment's outputs: the executed notebook, its record, stays until replaced.
            for stale in (run_dir / "metrics.json", run_dir / "results.json"):
                stale.unlink(missing_ok=True)
            for stage in STAGES:
                if (run_dir / stage).exists():
                    with lock_folder(run_dir / stage, f"clearing {stage} of {_what(config)}"):
                        shutil.rmtree(run_dir / stage)
        else:
            check_stage_records(stages)
        remove_stray_temporaries(run_dir)
        atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config_to_dict(config), sort_keys=False))
    except BaseException:
        if not held_before:
            release_folder(run_dir)
        raise
    return run_dir


def run_stage(config: ExperimentConfig, stage: str, init_from: Path | None = None) -> Path:
    """Train one stage (or reuse it when finished with this config) and return its final checkpoint.

    On more than one GPU (`stage_gpus`) the stage runs under `torchrun`, its output streamed here.
    """
    train_config = stage_config(config, stage, init_from)
    paths = train_config.paths
    check_inputs(train_config, where=f"{config.experiment} {stage}")
    with holding_folder(config.run_dir, _what(config)):
        finished = is_finished(paths)
        conflict = record_conflict(train_config, paths, finished)
        if conflict is not None:
            raise FileExistsError(f"{stage}: {conflict}; {REDO}")
        if finished:
            print(f"{stage}: reusing the finished stage's {paths.final_checkpoint}")
            return paths.final_checkpoint
        gpus = stage_gpus(config, stage)
        if gpus == 1:
            from tinysm.engine.train import train

            return Path(train(train_config))
        return _run_under_torchrun(config, stage, train_config, gpus)


def _run_under_torchrun(config: ExperimentConfig, stage: str, train_config: TrainConfig, gpus: int) -> Path:
    stage_yaml = config.run_dir / f"{stage}.yaml"
    atomic_write_text(stage_yaml, yaml.safe_dump(config_to_dict(train_config), sort_keys=False))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={gpus}", "-m", "tinysm", "train", str(stage_yaml)]
    print("$", " ".join(command), flush=True)
    with subprocess.Popen(command, cwd=repo_root(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, bufsize=1) as process:
        for line in process.stdout:
            print(line, end="", flush=True)
    if process.returncode != 0 or not is_finished(train_config.paths):
        raise RuntimeError(f"{stage}: torchrun exited with {process.returncode}; see the output above")
    return train_config.paths.final_checkpoint


def pretrain(config: ExperimentConfig) -> Path | None:
    """The pre-trained checkpoint, or None when the experiment starts from ImageNet (reference §8)."""
    return None if config.pretrain == "none" else run_stage(config, "pretrain")


def finetune(config: ExperimentConfig, pretrained: Path | None) -> Path:
    """Fine-tune on TinyPerson tiles, transferring every matching tensor of `pretrained` (reference §8)."""
    return run_stage(config, "finetune", init_from=pretrained)


def training_log(config: ExperimentConfig) -> list[dict[str, Any]]:
    """The training records (not the evaluations) of every stage run so far, tagged with `stage`."""
    from tinysm.engine.metrics_log import read_metrics

    return [{**record, "stage": stage} for stage in STAGES
            for record in read_metrics(config.run_dir / stage / "metrics.jsonl") if "loss" in record]


def load_trained_detector(checkpoint: Path, device: str = "auto"):
    """The detector a stage's final checkpoint holds, rebuilt from the config saved with it."""
    from tinysm.engine.checkpoint import load_checkpoint
    from tinysm.engine.config import builds_trainable_backbone, recorded_with_defaults
    from tinysm.engine.distributed import resolve_device
    from tinysm.models import build_detector

    state = load_checkpoint(checkpoint)
    trained_with = recorded_with_defaults(state["config"])
    model = build_detector(trained_with["detector"], len(state["category_ids"]), backbone=trained_with["backbone"],
                           backbone_weights=None, category_ids=state["category_ids"],
                           trainable_backbone=builds_trainable_backbone(
                               trained_with["backbone_weights"], trained_with["init_from"],
                               trained_with["backbone_freezing"]),
                           **trained_with["detector_options"])
    model.load_state_dict(state["model"])
    return model.to(resolve_device(device))


def evaluation_set(config: ExperimentConfig):
    """The full test images the experiment is scored on, with their ground truth (reference §1.2, §6)."""
    from tinysm.data.annotations import drop_dense_images, load_annotations
    from tinysm.engine.data import first_images

    tiny_set, _ = layouts(config.data_dir)
    # reference §1.2: dense images (> 200 boxes) are left out of evaluation.
    test = drop_dense_images(load_annotations(tiny_set.test_annotations, tiny_set.test_images))
    return first_images(test, config.max_test_images)


def evaluate(config: ExperimentConfig, checkpoint: Path):
    """Tiled inference on the test set (reference §2.3), the TinyPerson metrics (reference §6), both recorded.

    Writes results.json, then metrics.json last, and drops the stages' resumable checkpoints;
    returns the evaluator's `TinyResult`.
    """
    from tinysm.data.datasets import DetectionDataset
    from tinysm.engine.predict import predict
    from tinysm.evaluation import evaluate_tiny

    start = time.monotonic()
    with holding_folder(config.run_dir, _what(config)):
        test = evaluation_set(config)
        model = load_trained_detector(checkpoint, config.device)
        detections = predict(model, DetectionDataset(test), results_path=config.run_dir / "results.json")
        result = evaluate_tiny(test, detections, max_dets=config.max_dets)
        record = {
            "experiment": config.experiment, "detector": config.detector, "pretrain": config.pretrain,
            "backbone": config.backbone, "backbone_weights": config.backbone_weights,
            # the recipe as run, so that 1-GPU and 2-GPU runs compare (reference §8: LR per image)
            "gpus": config.gpus, "batch_size": config.batch_size, "lr_per_image": config.lr_per_image,
            "optimizer_lr": config.optimizer_lr, "seed": config.seed,
            "data_root": config.data_root, "test_images": len(test.images), "checkpoint": str(checkpoint),
            "evaluation_seconds": time.monotonic() - start, "metrics": result.metrics,
        }
        atomic_write_json(config.run_dir / "metrics.json", record)
        # A finished run keeps one checkpoint per stage, the verified final one: the resumable copy
        # (optimiser state, RNG streams) would double the folder's size for nothing.
        for stage in STAGES:
            RunPaths(config.run_dir / stage).last_checkpoint.unlink(missing_ok=True)
    release_folder(config.run_dir)  # the run has finished: the folder is no longer this process's
    return result


def run_experiment(config: ExperimentConfig) -> dict[str, float]:
    """The whole experiment without the notebook: start, pre-train?, fine-tune, evaluate -> metrics."""
    try:
        start_run(config)
        checkpoint = finetune(config, pretrain(config))
        return evaluate(config, checkpoint).metrics
    finally:
        release_folder(config.run_dir)  # also when it failed: this process is done with the folder
