"""Training: one stage of the paper's recipes (reference §8) on a CPU, one GPU or several (torchrun).

The recipe (the seed's table; the `TrainConfig` defaults are the fine-tuning row):
- Fine-tuning and the baseline, on TinyPerson training tiles (640×512, overlap 50, erased images):
  SGD, momentum 0.9, weight decay 1e-4, LR 0.005 per image in the global batch (2 GPUs × 1 image
  -> 0.01), 12 epochs, LR ×0.1 after epochs 8 and 11, linear warm-up over 500 iterations from
  0.001×, horizontal flip 0.5. Adaptive RetinaNet "-c" adds gradient clipping at max-norm 1.
- SM / MSM pre-training on COCO (all 80 classes): the same optimiser and schedule with LR 0.01 for
  2 GPUs × 8 images (exp4.0) or × 4 images (exp4.1, 4.2, 5.1, 5.2), i.e. `lr_per_image` 0.01/16 or
  0.01/8; Scale Match / Monotone SM on whole images in place of the usual resize (reference §4 step 4),
  the target histogram from the TinyPerson training annotations.
- Transfer: the fine-tuning stage starts from every pre-trained tensor whose name and shape match
  (`init_from`); the class-specific layers start fresh.

`train(config)` runs a stage and returns its final checkpoint; it resumes exactly from the
stage's last checkpoint when one exists, and returns at once when the stage has already finished.
Before anything is written it checks the config's input paths, then locks the stage folder (one
writer; `engine/stage_folder`).
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from tqdm import tqdm

from tinysm.config import config_to_dict
from tinysm.engine.checkpoint import (
    TrainingState, capture_rng_state, load_checkpoint, save_checkpoint,
)
from tinysm.engine.config import TrainConfig, check_inputs
from tinysm.engine.data import build_training_data
from tinysm.engine.distributed import (
    DistributedContext, barrier, cleanup_distributed, gather_objects, mean_across_processes,
    setup_distributed, wrap_model,
)
from tinysm.engine.evaluate import evaluate_detector
from tinysm.engine.metrics_log import MetricsLog
from tinysm.engine.schedule import WarmupMultiStep, build_scheduler
from tinysm.engine.stage_folder import check_run_folder, claim_stage, write_finished
from tinysm.paths import resolve
from tinysm.terminal import progress_bar


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the step was not applied and no checkpoint was written."""


@dataclass
class StepRecord:
    """What one optimiser step reports: process-averaged losses, its LR and timings (seconds)."""

    losses: dict[str, float]
    lr: float
    images: int             # images in the global batch
    step_time: float        # from the end of the previous step to the end of this one
    data_time: float        # the part of it spent waiting for the batch


def train_one_epoch(model: torch.nn.Module, state: TrainingState, loader: Iterable, context: DistributedContext,
                    stop_at: int, *, amp: bool = False, clip_grad_norm: float | None = None,
                    after_step: Callable[[StepRecord], None] = lambda record: None) -> None:
    """Steps over `loader` until it ends or `state.iteration` reaches `stop_at`.

    Raises `NonFiniteLossError` naming the iteration before a non-finite loss is back-propagated.
    """
    model.train()
    use_amp = amp and context.device.type == "cuda"
    tick = time.perf_counter()
    for images, targets in loader:
        images = [image.to(context.device, non_blocking=True) for image in images]
        targets = [{"boxes": t["boxes"].to(context.device, non_blocking=True),
                    "labels": t["labels"].to(context.device, non_blocking=True)} for t in targets]
        data_time = time.perf_counter() - tick
        # fp16 with a GradScaler, never bf16: bf16 snaps decoded boxes to a 2–4 px grid (reference §7).
        with torch.autocast(context.device.type, dtype=torch.float16, enabled=use_amp):
            loss_terms = model(images, targets)
        loss = sum(loss_terms.values())
        logged = mean_across_processes(
            {"loss": loss.item(), **{name: value.item() for name, value in loss_terms.items()}}, context)
        if not all(math.isfinite(value) for value in logged.values()):
            terms = ", ".join(f"{name} {value:.4g}" for name, value in logged.items())
            raise NonFiniteLossError(f"non-finite loss at iteration {state.iteration + 1} "
                                     f"(epoch {state.epoch + 1}): {terms}; the step was not applied")
        state.optimizer.zero_grad(set_to_none=True)
        state.scaler.scale(loss).backward()
        if clip_grad_norm is not None:
            state.scaler.unscale_(state.optimizer)  # clip the true gradients, not the scaled ones
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
        lr = state.optimizer.param_groups[0]["lr"]
        state.scaler.step(state.optimizer)
        state.scaler.update()
        state.scheduler.step()
        state.iteration += 1
        now = time.perf_counter()
        after_step(StepRecord(logged, lr, len(images) * context.world_size, now - tick, data_time))
        if state.iteration >= stop_at:
            break
        tick = time.perf_counter()


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) streams."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_model(config: TrainConfig, category_ids: list[int], context: DistributedContext) -> torch.nn.Module:
    """The stage's detector, with matching pre-trained tensors transferred from `init_from` (reference §8)."""
    from tinysm.models import build_detector, load_matching_weights

    weights = config.backbone_weights
    if weights is not None and weights != "imagenet":
        weights = str(resolve(weights))  # a local file, relative to the repository like every path
    model = build_detector(config.detector, len(category_ids), backbone=config.backbone, backbone_weights=weights,
                           category_ids=category_ids, trainable_backbone=config.trainable_backbone,
                           bn_affine_trainable=config.bn_affine_trainable, **config.detector_options)
    if config.init_from is not None:
        report = load_matching_weights(model, load_checkpoint(resolve(config.init_from)))
        if context.is_main:
            tqdm.write(report.summary())
    return model.to(context.device)


def build_training_state(model: torch.nn.Module, config: TrainConfig, context: DistributedContext,
                         iters_per_epoch: int) -> TrainingState:
    """SGD with the LR scaled to the global batch, the warm-up/step schedule and the GradScaler."""
    lr = config.lr_per_image * config.batch_size * context.world_size
    parameters = [p for p in model.parameters() if p.requires_grad]  # frozen stem/layer1/BN stay out
    optimizer = torch.optim.SGD(parameters, lr=lr, momentum=config.momentum, weight_decay=config.weight_decay)
    schedule = WarmupMultiStep(iters_per_epoch, tuple(config.milestones), config.warmup_iters, config.warmup_ratio)
    scaler = torch.amp.GradScaler(context.device.type, enabled=config.amp and context.device.type == "cuda")
    return TrainingState(model, optimizer, build_scheduler(optimizer, schedule), scaler, iters_per_epoch)


def train(config: TrainConfig) -> Path:
    """Run one training stage; returns its final checkpoint (`config.paths.final_checkpoint`).

    Under torchrun every process calls this; only rank 0 writes. The metrics log is
    `config.paths.metrics` (JSON lines, see `tinysm.engine.metrics_log.read_metrics`).
    """
    context = setup_distributed(config.device)
    try:
        return _train(config, context)
    finally:
        cleanup_distributed(context)


def _train(config: TrainConfig, context: DistributedContext) -> Path:
    from tinysm.models.backbone import check_backbone_weights

    paths = config.paths
    # validate -> check the inputs -> lock -> write: a typo leaves no folder behind (every rank checks)
    check_backbone_weights(config.backbone, config.backbone_weights)
    check_inputs(config)
    lock, claim = claim_stage(paths, context, f"training {paths.out_dir.name}")
    try:
        check_run_folder(config, paths, record=context.is_main, finished=claim.finished)
        barrier(context)
        if claim.finished:
            if context.is_main:
                tqdm.write(f"{paths.final_checkpoint} exists: this stage has finished")
            return paths.final_checkpoint
        if claim.damaged is not None and context.is_main:
            tqdm.write(f"{paths.final_checkpoint} is not a complete final checkpoint ({claim.damaged}); "
                       f"finishing the stage again from {paths.last_checkpoint.name}")
        return _train_stage(config, context)
    finally:
        if lock is not None:
            lock.release()


def _train_stage(config: TrainConfig, context: DistributedContext) -> Path:
    """The training loop of a claimed stage folder: resume, train to the end, write the final checkpoint."""
    paths = config.paths
    seed_everything(config.seed + context.rank)
    loader, dataset, sampler, category_ids = build_training_data(config, context)
    model = build_model(config, category_ids, context)
    iters_per_epoch = math.ceil(sampler.num_samples / config.batch_size)
    state = build_training_state(model, config, context, iters_per_epoch)
    if paths.last_checkpoint.is_file():
        state.restore(load_checkpoint(paths.last_checkpoint), paths.last_checkpoint, context.rank)
    trained = wrap_model(model, context)
    stop_at = config.epochs * iters_per_epoch if config.max_iters is None else min(
        config.max_iters, config.epochs * iters_per_epoch)
    log = MetricsLog(paths.metrics, state.iteration) if context.is_main else None
    progress = progress_bar(total=stop_at, initial=state.iteration, desc=f"train {paths.out_dir.name}",
                    disable=not context.is_main, dynamic_ncols=True)
    window: list[StepRecord] = []
    saved_at = state.iteration

    def checkpoint() -> None:
        nonlocal saved_at
        if saved_at == state.iteration:  # checkpoint_every may have just written this one
            return
        rng_states = gather_objects(capture_rng_state(), context)  # every rank's streams, for exact resume
        if context.is_main:
            save_checkpoint(state.to_checkpoint(rng_states, config=config_to_dict(config),
                                                category_ids=category_ids), paths.last_checkpoint)
        saved_at = state.iteration

    def after_step(record: StepRecord) -> None:
        window.append(record)
        progress.set_postfix(loss=f"{record.losses['loss']:.3f}", lr=f"{record.lr:.2e}",
                             img_s=f"{record.images / record.step_time:.1f}", refresh=False)
        progress.update(1)
        if log is not None and (state.iteration % config.log_every == 0 or state.iteration == stop_at):
            log.write(training_record(window, state))
            window.clear()
        if config.checkpoint_every and state.iteration % config.checkpoint_every == 0:
            checkpoint()

    try:
        while state.iteration < stop_at:
            epoch, done_in_epoch = divmod(state.iteration, iters_per_epoch)
            dataset.set_epoch(epoch)
            sampler.set_position(epoch, done_in_epoch * config.batch_size)
            train_one_epoch(trained, state, loader, context, stop_at, amp=config.amp,
                            clip_grad_norm=config.clip_grad_norm, after_step=after_step)
            if log is not None and should_evaluate(config, state, stop_at):
                log.write({"iteration": state.iteration, "epoch": state.iteration / iters_per_epoch,
                           "eval": evaluate_detector(model, config)})
            barrier(context)  # the other ranks wait for rank 0's evaluation
            checkpoint()
    except NonFiniteLossError as err:
        kept = (f"the last good checkpoint is kept: {paths.last_checkpoint}" if paths.last_checkpoint.is_file()
                else "no checkpoint had been written yet")
        raise NonFiniteLossError(f"{paths.out_dir}: {err}; {kept}") from None
    finally:
        progress.close()
    if context.is_main:
        save_checkpoint({"model": model.state_dict(), "category_ids": category_ids,
                         "iteration": state.iteration, "config": config_to_dict(config)},
                        paths.final_checkpoint)
        write_finished(paths, state.iteration)  # after the checkpoint: its presence means "complete"
    barrier(context)
    return paths.final_checkpoint


def training_record(window: list[StepRecord], state: TrainingState) -> dict[str, Any]:
    """One metrics-log record summarising the steps since the last one (losses: the last step's)."""
    last = window[-1]
    step_time = sum(r.step_time for r in window)
    return {
        "iteration": state.iteration, "epoch": state.iteration / state.iters_per_epoch, "lr": last.lr,
        **last.losses,
        "images_per_s": sum(r.images for r in window) / step_time,
        "data_wait": sum(r.data_time for r in window) / step_time,
    }


def should_evaluate(config: TrainConfig, state: TrainingState, stop_at: int) -> bool:
    """Evaluate every `eval_every` epochs and after the last step, when an eval set is configured."""
    if config.eval_annotations is None:
        return False
    at_epoch_end = state.iteration % state.iters_per_epoch == 0
    every = config.eval_every is not None and at_epoch_end and state.epoch % config.eval_every == 0
    return every or state.iteration == stop_at
