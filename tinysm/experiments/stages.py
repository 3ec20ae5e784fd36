"""The only place where an experiment becomes engine stages: `stage_config(config, stage)` is the
`TrainConfig` of its COCO pre-training or its TinyPerson fine-tuning (reference §8).

One vocabulary: learning rates are per image in both configs and pass through unchanged; the
detector's own properties (the "-c" clipping) come from `tinysm.models.DETECTORS`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tinysm.data.layout import MERGED_SPLIT, layouts
from tinysm.engine.config import TrainConfig, train_config_from_mapping
from tinysm.experiments.config import ExperimentConfig
from tinysm.models.build import DETECTORS

STAGES = ("pretrain", "finetune")


def stage_gpus(config: ExperimentConfig, stage: str) -> int:
    """How many GPUs (processes) a stage runs on: exp5.1 fine-tunes on 1 but pre-trains on 2 (reference §7.1)."""
    return config.pretrain_gpus if stage == "pretrain" else config.gpus


def stage_config(config: ExperimentConfig, stage: str, init_from: Path | None = None) -> TrainConfig:
    """The engine's TrainConfig of `stage` ("pretrain" on COCO or "finetune" on TinyPerson tiles)."""
    tiny_set, coco = layouts(config.data_dir)
    common: dict[str, Any] = {
        "detector": config.detector, "out_dir": config.run_dir / stage, "backbone": config.backbone,
        "detector_options": {"fpn_channels": config.fpn_channels, **config.detector_options},
        "backbone_weights": config.backbone_weights,
        "amp": config.amp, "device": config.device, "workers": config.workers, "seed": config.seed,
        "log_every": config.log_every, "warmup_iters": config.warmup_iters,
    }
    if stage == "pretrain":
        if config.pretrain == "none":
            raise ValueError(f"{config.experiment}: pretrain is 'none', there is no pre-training stage")
        # reference §8: COCO with the size-matching transform in place of a resize, target histogram from
        # the TinyPerson training annotations; "plain" pre-trains on COCO as it is. No clipping in
        # pre-training, for either detector; BatchNorm's weight and bias train on COCO when the
        # backbone starts from weights (its statistics stay frozen), as in the reference (§7.1).
        scale_match = "none" if config.pretrain == "plain" else config.pretrain
        # The reference pre-trains on train2017 + val2017 merged; MSM maps train2017's sizes (§8).
        values = {
            **common, "train_annotations": coco.annotations(MERGED_SPLIT), "train_images": coco.images(MERGED_SPLIT),
            "scale_match": scale_match, "sm_source_annotations": coco.annotations("train2017"),
            "sm_target_annotations": tiny_set.train_erase_annotations if scale_match != "none" else None,
            "sm_bins": config.sm_bins, "sm_scale_range": config.sm_scale_range,
            "sm_default_scale": config.sm_default_scale, "sm_resize": config.sm_resize,
            "epochs": config.pretrain_epochs,
            "milestones": config.pretrain_milestones, "lr_per_image": config.pretrain_lr_per_image,
            "batch_size": config.pretrain_batch_size, "max_iters": config.pretrain_max_iters,
            "max_images": config.pretrain_max_images, "bn_affine_trainable": config.backbone_weights is not None,
            "clip_grad_norm": config.clip_grad_norm,
        }
    elif stage == "finetune":
        # reference §1.2, §2.1: the erased training images cut into 640x512 tiles (overlap 50).
        values = {
            **common, "train_annotations": tiny_set.train_tile_annotations,
            "train_images": tiny_set.erase_train_images, "init_from": init_from,
            "backbone_freezing": config.finetune_backbone_freezing,
            "clip_grad_norm": (DETECTORS[config.detector].clip_grad_norm if config.clip_grad_norm is None
                               else config.clip_grad_norm),
            "epochs": config.epochs, "milestones": config.milestones, "lr_per_image": config.lr_per_image,
            "batch_size": config.batch_size, "max_iters": config.max_iters, "max_images": config.max_train_images,
        }
    else:
        raise ValueError(f"unknown stage {stage!r}; stages are {STAGES}")
    return train_config_from_mapping(values, f"{config.experiment} {stage} stage")
