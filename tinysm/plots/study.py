"""The CPU study's figure: per detector, AP50_tiny per pre-training arm, and each arm's gain over the
no-pre-training arm beside the paper's gain (reference §8).

It draws the study table it is given (`tinysm.experiments.study`: means and sample stds over seeds)
and the per-run rows behind it (the dots, one per seed); it computes no statistic of its own, so the
figure and `figures/cpu_study.csv` cannot disagree.
"""
from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

PAPER_COLOR = "0.65"
WIDTH = 0.38


def _label(value: float, signed: bool, missing: str) -> str:
    if math.isnan(value):
        return missing
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _bars(ax: Axes, x: np.ndarray, means: Sequence[float], stds: Sequence[float],
          points: Sequence[Sequence[float]], signed: bool, missing: str, **style) -> None:
    """Bars of `means`, whiskers of `stds` where defined (one seed has none), a dot per seed, and the
    value written beyond the furthest of them; a NaN mean gets no bar but the word `missing`."""
    means, stds = np.asarray(means, float), np.asarray(stds, float)
    ax.bar(x, np.nan_to_num(means), WIDTH, **style)
    defined = ~np.isnan(means) & ~np.isnan(stds)
    if defined.any():
        ax.errorbar(x[defined], means[defined], yerr=stds[defined], fmt="none", ecolor="black", elinewidth=1,
                    capsize=3, zorder=3)
    for centre, mean, std, seeds in zip(x, means, stds, points):
        seeds = np.asarray(seeds, float)
        if seeds.size:  # evenly spread, not jittered: the figure's bytes stay the same
            offsets = np.linspace(-WIDTH / 4, WIDTH / 4, seeds.size) if seeds.size > 1 else np.zeros(1)
            ax.scatter(centre + offsets, seeds, s=10, color="black", alpha=0.7, zorder=4, linewidths=0)
        down = not math.isnan(mean) and mean < 0
        reach = [np.nan_to_num(mean)] + ([mean - std if down else mean + std] if not math.isnan(std) else [])
        reach += list(seeds)
        ax.annotate(_label(mean, signed, missing), (centre, min(reach) if down else max(reach)),
                    xytext=(0, -3 if down else 3), textcoords="offset points", ha="center",
                    va="top" if down else "bottom", fontsize=7)


def _limits(ax: Axes, *arrays: Sequence[float], floor_at_zero: bool) -> None:
    values = np.concatenate([np.asarray(a, float).ravel() for a in arrays] + [np.zeros(1)])
    values = values[~np.isnan(values)]
    low, high = float(values.min()), float(values.max())
    span = max(high - low, 1.0)  # no runs at all: still a readable axis
    ax.set_ylim(0 if floor_at_zero else low - 0.15 * span, high + 0.2 * span)


def plot_study(table: pd.DataFrame, runs: pd.DataFrame, data_label: str = "synthetic CPU study",
               baseline: str = "none") -> Figure:
    """Two panels per detector (one row each, in the table's order).

    Left: AP50_tiny mean ± sample std over seeds per arm, the seeds as dots. Right: per arm other than
    `baseline`, the mean ± std of the per-seed Δ vs `baseline` beside the paper's Δ vs ImageNet.
    `table` has the study table's columns (`detector, arm, seeds, AP50_tiny_mean, AP50_tiny_std,
    delta_vs_none_mean, delta_vs_none_std, paper_delta`), `runs` one row per run (`detector, arm,
    seed, AP50_tiny, delta_vs_none`). A missing value is written as such, never drawn as a zero.
    """
    detectors = list(dict.fromkeys(table["detector"]))
    seeds = runs["seed"].nunique()
    ours = sns.color_palette("colorblind")[0]
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(len(detectors), 2, figsize=(12, 3.6 * len(detectors)), squeeze=False,
                                 layout="constrained")
    for (ax_ap, ax_delta), detector in zip(axes, detectors):
        rows = table[table["detector"] == detector]
        mine = runs[runs["detector"] == detector]
        per_arm = [mine.loc[mine["arm"] == arm, "AP50_tiny"] for arm in rows["arm"]]
        x = np.arange(len(rows), dtype=float)
        _bars(ax_ap, x, rows["AP50_tiny_mean"], rows["AP50_tiny_std"], per_arm, signed=False, missing="no runs",
              color=ours)
        ax_ap.set_xticks(x, [f"{arm}\n(n={len(r)})" for arm, r in zip(rows["arm"], per_arm)])
        _limits(ax_ap, rows["AP50_tiny_mean"] + rows["AP50_tiny_std"].fillna(0), *per_arm, floor_at_zero=True)
        ax_ap.set(ylabel="AP50_tiny (%)", xlabel="pre-training arm", title=f"{detector}: AP50_tiny per arm")

        gains = rows[rows["arm"] != baseline]
        paired = [mine.loc[mine["arm"] == arm, "delta_vs_none"].dropna() for arm in gains["arm"]]
        xd = np.arange(len(gains), dtype=float)
        _bars(ax_delta, xd - WIDTH / 2, gains["delta_vs_none_mean"], gains["delta_vs_none_std"], paired,
              signed=True, missing="no pairs", color=ours, label=f"ours: Δ vs '{baseline}' of the same seed")
        _bars(ax_delta, xd + WIDTH / 2, gains["paper_delta"], [math.nan] * len(gains), [[]] * len(gains),
              signed=True, missing="not published", color=PAPER_COLOR, hatch="//", edgecolor="white",
              label="paper: Δ vs ImageNet (docs/reference.md §8)")
        ax_delta.axhline(0, color="black", linewidth=0.8)
        ax_delta.set_xticks(xd, [f"{arm}\n({len(r)} paired)" for arm, r in zip(gains["arm"], paired)])
        spread = gains["delta_vs_none_std"].fillna(0)
        _limits(ax_delta, gains["delta_vs_none_mean"] + spread, gains["delta_vs_none_mean"] - spread,
                gains["paper_delta"], *paired, floor_at_zero=False)
        ax_delta.set(ylabel="Δ AP50_tiny (points)", xlabel="pre-training arm",
                     title=f"{detector}: gain over '{baseline}' (no COCO pre-training)")
    handles, labels = axes[0][1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=8)
    fig.suptitle(f"{data_label}, {seeds} seed{'s' if seeds != 1 else ''}: bars = mean, whiskers = sample std "
                 f"over seeds, dots = single seeds")
    return fig
