"""One experiment of the paper's table: pre-training (optional) -> fine-tuning -> tiled evaluation.

Everything lands in `<runs_dir>/<experiment>/` (ARCHITECTURE.md):
```
config.yaml              the ExperimentConfig, as validated
pretrain/, finetune/     one engine stage each: config.yaml, metrics.jsonl, checkpoints
results.json             COCO detections on the test images (tiled inference, SPEC §2.3)
metrics.json             written last, atomically: its presence marks a finished run
experiment.ipynb         the executed notebook (written by papermill)
```
A finished run is never replaced unless the config says `overwrite: true`; an interrupted one is
resumed: a stage whose final checkpoint exists is not trained again.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tinysm.config import config_to_dict
from tinysm.data.layout import CocoLayout, TinyPersonLayout
from tinysm.engine.config import TrainConfig, train_config_from_mapping
from tinysm.experiment_config import ExperimentConfig
from tinysm.io import atomic_write_json, atomic_write_text
from tinysm.paths import repo_root

STAGES = ("pretrain", "finetune")
# SPEC §7: the "-c" of Adap RetinaNet-c is gradient clipping at max-norm 1; Faster-FPN trains unclipped.
CLIP_GRAD_NORM = {"faster_fpn": None, "adaptive_retinanet": 1.0}


@dataclass(frozen=True)
class ExperimentData:
    """The two datasets of an experiment, in the layout of SPEC §1.1."""

    tiny_set: TinyPersonLayout
    coco: CocoLayout

    @classmethod
    def of(cls, config: ExperimentConfig) -> "ExperimentData":
        """The datasets under the config's `data_root`."""
        return cls(TinyPersonLayout(config.data_dir / "tiny_set"), CocoLayout(config.data_dir / "coco"))


def stage_config(config: ExperimentConfig, stage: str, init_from: Path | None = None) -> TrainConfig:
    """The engine's TrainConfig of `stage` ("pretrain" on COCO or "finetune" on TinyPerson tiles)."""
    data = ExperimentData.of(config)
    common = {
        "detector": config.detector, "out_dir": config.run_dir / stage, "backbone": config.backbone,
        "detector_options": {"fpn_channels": config.fpn_channels},
        "backbone_weights": "imagenet" if config.imagenet_weights else None,
        "clip_grad_norm": CLIP_GRAD_NORM[config.detector], "device": config.device,
        "workers": config.workers, "seed": config.seed, "log_every": config.log_every,
    }
    if stage == "pretrain":
        if config.pretrain == "none":
            raise ValueError(f"{config.experiment}: pretrain is 'none', there is no pre-training stage")
        # SPEC §8: COCO with the SM/MSM transform in place of a resize, target histogram from the
        # TinyPerson training annotations; "plain" pre-trains on COCO as it is.
        scale_match = {"plain": "none", "sm": "sm", "msm": "msm"}[config.pretrain]
        values = {
            **common, "train_annotations": data.coco.annotations(), "train_images": data.coco.images(),
            "scale_match": scale_match,
            "sm_target_annotations": data.tiny_set.train_erase_annotations if scale_match != "none" else None,
            "sm_bins": config.sm_bins, "sm_scale_range": config.sm_scale_range,
            "sm_default_scale": config.sm_default_scale, "epochs": config.pretrain_epochs,
            "milestones": config.pretrain_milestones,
            "lr_per_image": config.pretrain_lr / (config.pretrain_batch_size * config.gpus),
            "batch_size": config.pretrain_batch_size, "warmup_iters": config.warmup_iters,
            "max_iters": config.pretrain_max_iters, "max_images": config.pretrain_max_images,
        }
    elif stage == "finetune":
        # SPEC §1.2, §2.1: the erased training images cut into 640x512 tiles (overlap 50).
        values = {
            **common, "train_annotations": data.tiny_set.train_tile_annotations,
            "train_images": data.tiny_set.erase_train_images, "init_from": init_from,
            "epochs": config.epochs, "milestones": config.milestones,
            "lr_per_image": config.lr / (config.batch_size * config.gpus),
            "batch_size": config.batch_size, "warmup_iters": config.warmup_iters,
            "max_iters": config.max_iters, "max_images": config.max_train_images,
        }
    else:
        raise ValueError(f"unknown stage {stage!r}; stages are {STAGES}")
    return train_config_from_mapping(values, f"{config.experiment} {stage} stage")


def start_run(config: ExperimentConfig) -> Path:
    """Check the run folder may be written, clear a run being redone, record the config."""
    run_dir = config.run_dir
    finished = run_dir / "metrics.json"
    if finished.exists() and not config.overwrite:
        raise FileExistsError(f"{run_dir} holds a finished run ({finished.name}); set overwrite: true "
                              "(tinysm reproduce --force) to run it again")
    if config.overwrite:
        # Only this experiment's outputs: the notebook papermill is writing stays.
        for stale in (finished, run_dir / "results.json"):
            stale.unlink(missing_ok=True)
        for stage in STAGES:
            shutil.rmtree(run_dir / stage, ignore_errors=True)
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config_to_dict(config), sort_keys=False))
    return run_dir


def run_stage(config: ExperimentConfig, stage: str, init_from: Path | None = None) -> Path:
    """Train one stage (or reuse its final checkpoint) and return that checkpoint.

    With `gpus > 1` the stage runs under `torchrun`, its output streamed here line by line.
    """
    train_config = stage_config(config, stage, init_from)
    final = train_config.paths.final_checkpoint
    if final.is_file():
        print(f"{stage}: reusing the finished stage's {final}")
        return final
    if config.gpus == 1:
        from tinysm.engine.train import train

        return Path(train(train_config))
    stage_yaml = config.run_dir / f"{stage}.yaml"
    atomic_write_text(stage_yaml, yaml.safe_dump(config_to_dict(train_config), sort_keys=False))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={config.gpus}", "-m", "tinysm", "train", str(stage_yaml)]
    print("$", " ".join(command), flush=True)
    with subprocess.Popen(command, cwd=repo_root(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, bufsize=1) as process:
        for line in process.stdout:
            print(line, end="", flush=True)
    if process.returncode != 0 or not final.is_file():
        raise RuntimeError(f"{stage}: torchrun exited with {process.returncode}; see the output above")
    return final


def pretrain(config: ExperimentConfig) -> Path | None:
    """The pre-trained checkpoint, or None when the experiment starts from ImageNet (SPEC §8)."""
    return None if config.pretrain == "none" else run_stage(config, "pretrain")


def finetune(config: ExperimentConfig, pretrained: Path | None) -> Path:
    """Fine-tune on TinyPerson tiles, transferring every matching tensor of `pretrained` (SPEC §8)."""
    return run_stage(config, "finetune", init_from=pretrained)


def training_log(config: ExperimentConfig) -> list[dict[str, Any]]:
    """The training records (not the evaluations) of every stage run so far, tagged with `stage`."""
    from tinysm.engine.metrics_log import read_metrics

    return [{**record, "stage": stage} for stage in STAGES
            for record in read_metrics(config.run_dir / stage / "metrics.jsonl") if "loss" in record]


def scale_match_transform(config: ExperimentConfig):
    """The pre-training's SM / MSM transform (SPEC §4, §5), as the engine builds it."""
    from tinysm.data.annotations import load_annotations
    from tinysm.engine.data import training_transform

    if config.pretrain not in ("sm", "msm"):
        raise ValueError(f"{config.experiment}: pretrain is {config.pretrain!r}, not a Scale Match")
    train_config = stage_config(config, "pretrain")
    return training_transform(train_config, load_annotations(train_config.train_annotations)).scale_match


def load_trained_detector(checkpoint: Path, device: str = "auto"):
    """The detector a stage's final checkpoint holds, rebuilt from the config saved with it."""
    from tinysm.engine.checkpoint import load_checkpoint
    from tinysm.engine.config import trains_from_scratch
    from tinysm.engine.distributed import resolve_device
    from tinysm.models import build_detector

    state = load_checkpoint(checkpoint)
    trained_with = state["config"]
    model = build_detector(trained_with["detector"], len(state["category_ids"]), backbone=trained_with["backbone"],
                           backbone_weights=None, category_ids=state["category_ids"],
                           from_scratch=trains_from_scratch(trained_with["backbone_weights"], trained_with["init_from"]),
                           **trained_with["detector_options"])
    model.load_state_dict(state["model"])
    return model.to(resolve_device(device))


def evaluation_set(config: ExperimentConfig):
    """The full test images the experiment is scored on, with their ground truth (SPEC §1.2, §6)."""
    from tinysm.data.annotations import drop_dense_images, load_annotations
    from tinysm.engine.data import first_images

    data = ExperimentData.of(config)
    # SPEC §1.2: dense images (> 200 boxes) are left out of evaluation.
    test = drop_dense_images(load_annotations(data.tiny_set.test_annotations, data.tiny_set.test_images))
    return first_images(test, config.max_test_images)


def evaluate(config: ExperimentConfig, checkpoint: Path):
    """Tiled inference on the test set (SPEC §2.3), the TinyPerson metrics (SPEC §6), both recorded.

    Writes results.json, then metrics.json last; returns the evaluator's `TinyResult`.
    """
    from tinysm.data.datasets import DetectionDataset
    from tinysm.engine.predict import predict
    from tinysm.evaluation import evaluate_tiny

    start = time.monotonic()
    test = evaluation_set(config)
    model = load_trained_detector(checkpoint, config.device)
    detections = predict(model, DetectionDataset(test), results_path=config.run_dir / "results.json")
    result = evaluate_tiny(test, detections, max_dets=config.max_dets)
    record = {
        "experiment": config.experiment, "detector": config.detector, "pretrain": config.pretrain,
        "backbone": config.backbone, "imagenet_weights": config.imagenet_weights,
        "data_root": config.data_root, "test_images": len(test.images), "checkpoint": str(checkpoint),
        "evaluation_seconds": time.monotonic() - start, "metrics": result.metrics,
    }
    atomic_write_json(config.run_dir / "metrics.json", record)
    return result


def run_experiment(config: ExperimentConfig) -> dict[str, float]:
    """The whole experiment without the notebook: start, pre-train?, fine-tune, evaluate -> metrics."""
    start_run(config)
    checkpoint = finetune(config, pretrain(config))
    return evaluate(config, checkpoint).metrics
