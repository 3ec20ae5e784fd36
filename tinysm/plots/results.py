"""Figures of one experiment and of the results table: training curves, PR and MR–FPPI curves per
size range (reference §6), images with boxes, detections next to the ground truth, the AP50_tiny bars.

Every function returns a matplotlib Figure and draws from arrays; nothing here reads files.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from tinysm.io import atomic_path

Curves = Mapping[str, tuple[Sequence[float], Sequence[float]]]
GT_COLOR, IGNORE_COLOR, DET_COLOR = "#2ca02c", "#ffbf00", "#d62728"


def save_figure(fig: Figure, path: str | Path, dpi: int = 150) -> Path:
    """Write `fig` atomically in the format of the file's suffix (png, pdf, svg).

    PDFs get no creation date, so re-rendering the same figure gives the same bytes (the
    committed figures/ do not change on every run).
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".")
    metadata = {"CreationDate": None} if fmt == "pdf" else None
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight", metadata=metadata)
    return path


def plot_training_curves(records: Sequence[Mapping[str, float]], title: str = "") -> Figure:
    """Loss and learning rate against the iteration, one line per training stage.

    `records` are the engine's log lines: each has `stage`, `iteration`, `loss` and `lr`.
    """
    fig, (ax_loss, ax_lr) = plt.subplots(1, 2, figsize=(11, 3.6), constrained_layout=True)
    stages = list(dict.fromkeys(r["stage"] for r in records))
    for stage in stages:
        rows = [r for r in records if r["stage"] == stage]
        iters = [r["iteration"] for r in rows]
        # Markers: a short run logs a handful of records, which a bare line would hide.
        ax_loss.plot(iters, [r["loss"] for r in rows], lw=1, marker=".", label=stage)
        ax_lr.plot(iters, [r["lr"] for r in rows], lw=1.5, marker=".", label=stage)
    ax_loss.set(xlabel="iteration", ylabel="training loss (sum of the detector's losses)", title="loss")
    ax_lr.set(xlabel="iteration", ylabel="learning rate", title="learning rate (warm-up, steps)")
    for ax in (ax_loss, ax_lr):
        ax.grid(alpha=0.3)
        if stages:
            ax.legend(title="stage")
    if title:
        fig.suptitle(title)
    return fig


def plot_pr_curves(curves: Curves, iou: float = 0.5, title: str = "") -> Figure:
    """Precision against recall, one line per size range (reference §6.1), AP in the legend."""
    fig, ax = plt.subplots(figsize=(5.5, 4.5), constrained_layout=True)
    for name, (recall, precision) in curves.items():
        recall, precision = np.asarray(recall, float), np.asarray(precision, float)
        if recall.size == 0 or np.all(precision < 0):  # undefined range (no regular GT)
            continue
        ap = 100 * float(np.mean(np.clip(precision, 0, None)))
        ax.plot(recall, precision, lw=1.5, label=f"{name} (AP {ap:.1f})")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision",
           title=title or f"precision–recall at IoU {iou:g}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    return fig


def plot_mr_fppi(curves: Curves, iou: float = 0.5, title: str = "") -> Figure:
    """Miss rate against false positives per image (log–log), one line per size range (reference §6.2)."""
    fig, ax = plt.subplots(figsize=(5.5, 4.5), constrained_layout=True)
    for name, (fppi, miss_rate) in curves.items():
        fppi, miss_rate = np.asarray(fppi, float), np.asarray(miss_rate, float)
        keep = (fppi > 0) & (miss_rate >= 0)  # −1: undefined setup (no regular GT)
        if not keep.any():
            continue
        ax.step(fppi[keep], miss_rate[keep], where="post", lw=1.5, label=name)
    ax.set(xscale="log", yscale="log", xlim=(1e-2, 1e1), ylim=(1e-2, 1.05), xlabel="false positives per image",
           ylabel="miss rate", title=title or f"miss rate–FPPI at IoU {iou:g}")
    ax.axvspan(1e-2, 1e0, color="0.9", zorder=0, label="MR averaging range")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower left")
    return fig


def _draw_boxes(ax, boxes_xyxy: np.ndarray, color: str, lw: float = 1.0, linestyle: str = "-") -> None:
    for x1, y1, x2, y2 in np.asarray(boxes_xyxy, float).reshape(-1, 4):
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=color, lw=lw, ls=linestyle))


def _show(ax, image: np.ndarray, title: str) -> None:
    """Show an HxWx3 or 3xHxW image at pixel coordinates, without axes."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] == 3 and image.shape[-1] != 3:
        image = image.transpose(1, 2, 0)
    height, width = image.shape[:2]
    ax.imshow(image, extent=(0, width, height, 0), interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


@dataclass
class ImagePanel:
    """One picture of a grid: pixels (3×H×W or H×W×3), xyxy boxes, a title, and the canvas
    (width, height) it is drawn on: a rescaled image keeps its original's frame, so it looks smaller."""

    image: np.ndarray
    boxes: np.ndarray
    title: str
    canvas: tuple[int, int]


def plot_image_grid(panels: Sequence[ImagePanel], columns: int = 3, title: str = "") -> Figure:
    """`panels` with their boxes drawn, `columns` per row."""
    rows = max(1, math.ceil(len(panels) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.8 * rows), squeeze=False,
                             constrained_layout=True)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, panel in zip(axes.flat, panels):
        _show(ax, panel.image, panel.title)
        _draw_boxes(ax, panel.boxes, GT_COLOR)
        width, height = panel.canvas
        ax.set(xlim=(0, width), ylim=(height, 0))
    if title:
        fig.suptitle(title)
    return fig


def plot_detections_vs_truth(image: np.ndarray, gt_boxes: np.ndarray, gt_ignored: np.ndarray,
                             det_boxes: np.ndarray, det_scores: np.ndarray, score_threshold: float = 0.3,
                             max_shown: int = 300, title: str = "") -> Figure:
    """Ground truth (ignored boxes dashed) left; right, the best `max_shown` detections scoring
    ≥ `score_threshold` (an image can hold hundreds of persons, reference §2.3)."""
    gt_boxes = np.asarray(gt_boxes, float).reshape(-1, 4)
    gt_ignored = np.asarray(gt_ignored, bool).reshape(-1)
    scores = np.asarray(det_scores, float).reshape(-1)
    passing = np.flatnonzero(scores >= score_threshold)
    shown = passing[np.argsort(-scores[passing], kind="stable")[:max_shown]]
    fig, (ax_gt, ax_det) = plt.subplots(1, 2, figsize=(13, 4.6), constrained_layout=True)
    _show(ax_gt, image, f"ground truth: {int((~gt_ignored).sum())} persons, {int(gt_ignored.sum())} ignored (dashed)")
    _draw_boxes(ax_gt, gt_boxes[~gt_ignored], GT_COLOR)
    _draw_boxes(ax_gt, gt_boxes[gt_ignored], IGNORE_COLOR, linestyle="--")
    _show(ax_det, image, f"detections with score ≥ {score_threshold:g}: {len(passing)}"
          + (f" (best {len(shown)} drawn)" if len(shown) < len(passing) else ""))
    _draw_boxes(ax_det, np.asarray(det_boxes, float).reshape(-1, 4)[shown], DET_COLOR)
    if title:
        fig.suptitle(title)
    return fig


def plot_ap_bars(labels: Sequence[str], ours: Sequence[float], published: Sequence[float],
                 title: str = "AP50_tiny: this run against the paper") -> Figure:
    """Grouped bars of our AP50_tiny and the published one; a missing run (NaN) is labelled, not zero."""
    ours, published = np.asarray(ours, float), np.asarray(published, float)
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(labels) + 2), 4.4), constrained_layout=True)
    bars_ours = ax.bar(x - 0.2, np.nan_to_num(ours), 0.4, label="ours", color="#1f77b4")
    bars_paper = ax.bar(x + 0.2, np.nan_to_num(published), 0.4, label="published (docs/reference.md §8)", color="0.7")
    ax.bar_label(bars_ours, labels=["missing" if math.isnan(v) else f"{v:.1f}" for v in ours], fontsize=8)
    ax.bar_label(bars_paper, labels=["" if math.isnan(v) else f"{v:.1f}" for v in published], fontsize=8)
    ax.set_xticks(x, labels, fontsize=8)
    top = np.nanmax(np.concatenate([ours, published, [1.0]]))
    ax.set(ylabel="AP50_tiny (%)", ylim=(0, 1.3 * top), title=title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper right", ncols=2)
    return fig
