"""The result figures draw what they are given: bar heights and labels, boxes, curves per range."""
from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from matplotlib.patches import Rectangle  # noqa: E402

from tinysm.plots.results import (  # noqa: E402
    ImagePanel, plot_ap_bars, plot_detections_vs_truth, plot_image_grid, plot_mr_fppi, plot_pr_curves,
    plot_training_curves, save_figure,
)


def rectangles(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def test_ap_bars_show_missing_runs_as_missing_not_as_a_number():
    fig = plot_ap_bars(["a", "b"], [12.5, math.nan], [50.0, 45.25])
    ax = fig.axes[0]
    heights = [bar.get_height() for bar in ax.containers[0]] + [bar.get_height() for bar in ax.containers[1]]
    assert heights == [12.5, 0.0, 50.0, 45.25]
    labels = [t.get_text() for t in ax.texts]
    assert labels[:2] == ["12.5", "missing"] and labels[2:] == ["50.0", "45.2"]  # 45.25 rounds half-even


def test_detections_panel_draws_the_best_scoring_boxes_above_the_threshold():
    image = np.zeros((3, 50, 60), np.uint8)
    gt = np.array([[1, 1, 5, 5], [10, 10, 20, 20], [30, 30, 40, 45]], float)
    ignored = np.array([False, True, False])
    dets = np.array([[0, 0, 4, 4], [1, 1, 6, 6], [2, 2, 8, 8], [3, 3, 9, 9]], float)
    scores = np.array([0.9, 0.2, 0.5, 0.7])
    fig = plot_detections_vs_truth(image, gt, ignored, dets, scores, score_threshold=0.3, max_shown=2)
    ax_gt, ax_det = fig.axes
    assert len(rectangles(ax_gt)) == 3
    assert sorted(r.get_linestyle() for r in rectangles(ax_gt)) == ["-", "-", "--"]
    drawn = sorted((r.get_x(), r.get_y()) for r in rectangles(ax_det))
    assert drawn == [(0.0, 0.0), (3.0, 3.0)]  # scores 0.9 and 0.7; 0.5 passes but is third
    assert "3 (best 2 drawn)" in ax_det.get_title()


def test_image_grid_keeps_the_original_frame_of_a_rescaled_image():
    small = ImagePanel(np.zeros((12, 16, 3), np.uint8), np.array([[1, 1, 4, 4]]), "after", (160, 120))
    fig = plot_image_grid([small], columns=1)
    ax = fig.axes[0]
    assert ax.get_xlim() == (0, 160) and ax.get_ylim() == (120, 0)
    assert ax.images[0].get_extent() == [0, 16, 12, 0]


def test_curves_skip_undefined_ranges():
    recall = np.linspace(0, 1, 101)
    fig = plot_pr_curves({"tiny": (recall, np.full(101, 0.5)), "small": (recall, np.full(101, -1.0))})
    assert [line.get_label() for line in fig.axes[0].lines] == ["tiny (AP 50.0)"]
    fppi = np.logspace(-3, 1, 5)
    fig = plot_mr_fppi({"tiny": (fppi, np.array([1, 0.9, 0.8, 0.7, 0.6])), "small": (fppi, -np.ones(5))})
    assert [line.get_label() for line in fig.axes[0].lines] == ["tiny"]


def test_training_curves_one_line_per_stage(tmp_path):
    records = [{"stage": "pretrain", "iteration": i, "loss": 3.0 - i, "lr": 0.01} for i in (1, 2)] + [
        {"stage": "finetune", "iteration": 1, "loss": 1.0, "lr": 0.005}]
    fig = plot_training_curves(records)
    ax_loss, ax_lr = fig.axes
    assert [list(line.get_ydata()) for line in ax_loss.lines] == [[2.0, 1.0], [1.0]]
    assert [list(line.get_ydata()) for line in ax_lr.lines] == [[0.01, 0.01], [0.005]]
    path = save_figure(fig, tmp_path / "curves.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]  # no temp file left behind


@pytest.mark.parametrize("suffix, magic", [(".pdf", b"%PDF"), (".svg", b"<?xml")])
def test_save_figure_follows_the_suffix(tmp_path, suffix, magic):
    path = save_figure(plot_ap_bars(["a"], [1.0], [2.0]), tmp_path / f"bars{suffix}")
    assert path.read_bytes().startswith(magic)


def test_saving_the_same_figure_twice_gives_identical_files(tmp_path):
    import matplotlib.pyplot as plt

    from tinysm.plots.results import save_figure

    contents = []
    for _ in range(2):
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3])
        contents.append(save_figure(fig, tmp_path / "f.pdf").read_bytes())
        plt.close(fig)
    assert contents[0] == contents[1] and contents[0].startswith(b"%PDF")
