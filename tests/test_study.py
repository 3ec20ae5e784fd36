"""The synthetic CPU study: runs grouped by their record (not their name), Δ paired by seed, mean and
sample std by hand, the paper's Δ by hand from reference §8, the CSV and the figure."""
from __future__ import annotations

import json
import math

import matplotlib
import pandas as pd
import pytest

matplotlib.use("Agg")

from tinysm.experiments.results_table import collect_metrics  # noqa: E402
from tinysm.experiments.study import (  # noqa: E402
    COLUMNS, paper_delta, results_view, save_study_table, study_markdown, study_runs, study_table,
)
from tinysm.plots.results import save_figure  # noqa: E402
from tinysm.plots.study import plot_study  # noqa: E402


def write_run(runs, name, detector, pretrain, seed, ap50_tiny, data_root="data/synthetic"):
    folder = runs / name
    folder.mkdir(parents=True)
    record = {"experiment": name, "detector": detector, "pretrain": pretrain, "seed": seed, "data_root": data_root,
              "backbone": "resnet18", "backbone_weights": None, "metrics": {"AP50_tiny": ap50_tiny}}
    (folder / "metrics.json").write_text(json.dumps(record))


@pytest.fixture
def study(tmp_path):
    """Faster-FPN: none and SM on seeds 1–2, SM also on seed 3 (no `none` partner), plain on seed 1;
    RetinaNet: none and MSM on seed 1. Names that say nothing about the run, on purpose."""
    runs = tmp_path / "runs"
    for name, detector, pretrain, seed, ap in [
        ("r01", "faster_fpn", "none", 1, 10.0), ("r02", "faster_fpn", "none", 2, 12.0),
        ("r03", "faster_fpn", "sm", 1, 13.0), ("r04", "faster_fpn", "sm", 2, 16.0),
        ("r05", "faster_fpn", "sm", 3, 20.0), ("r06", "faster_fpn", "plain", 1, 9.5),
        ("a-retina-sm", "adaptive_retinanet", "none", 1, 4.0),  # the name lies: the record decides
        ("r08", "adaptive_retinanet", "msm", 1, 5.5),
    ]:
        write_run(runs, name, detector, pretrain, seed, ap)
    return collect_metrics(runs)


def test_one_row_per_detector_and_arm_in_order(study):
    table = study_table(study)
    assert list(table.columns) == list(COLUMNS)
    assert list(zip(table["detector"], table["arm"])) == [
        (d, a) for d in ("faster_fpn", "adaptive_retinanet") for a in ("none", "plain", "sm", "msm")]


def test_mean_and_sample_std_by_hand(study):
    table = study_table(study).set_index(["detector", "arm"])
    sm = table.loc[("faster_fpn", "sm")]
    assert sm["AP50_tiny_mean"] == pytest.approx((13 + 16 + 20) / 3)
    assert sm["AP50_tiny_std"] == pytest.approx(math.sqrt(((13 - 49 / 3) ** 2 + (16 - 49 / 3) ** 2
                                                           + (20 - 49 / 3) ** 2) / 2))
    none = table.loc[("faster_fpn", "none")]
    assert (none["AP50_tiny_mean"], none["AP50_tiny_std"]) == pytest.approx((11.0, math.sqrt(2)))
    single = table.loc[("adaptive_retinanet", "msm")]
    assert single["AP50_tiny_mean"] == 5.5 and math.isnan(single["AP50_tiny_std"])  # one seed: no std


def test_delta_pairs_by_seed_and_the_count_says_which_seeds_are_left_out(study):
    table = study_table(study).set_index(["detector", "arm"])
    sm = table.loc[("faster_fpn", "sm")]
    # seed 1: 13 − 10 = 3, seed 2: 16 − 12 = 4; seed 3 has no `none` run of Faster-FPN.
    assert sm["seeds"] == "3 (Δ: 2 paired)"
    assert (sm["delta_vs_none_mean"], sm["delta_vs_none_std"]) == pytest.approx((3.5, math.sqrt(0.5)))
    plain = table.loc[("faster_fpn", "plain")]
    assert plain["seeds"] == "1" and plain["delta_vs_none_mean"] == pytest.approx(-0.5)
    assert math.isnan(plain["delta_vs_none_std"])
    msm = table.loc[("adaptive_retinanet", "msm")]  # paired with the RetinaNet `none`, not Faster-FPN's
    assert msm["delta_vs_none_mean"] == pytest.approx(1.5)
    none = table.loc[("faster_fpn", "none")]
    assert none["seeds"] == "2" and math.isnan(none["delta_vs_none_mean"])  # the baseline has no Δ
    missing = table.loc[("faster_fpn", "msm")]
    assert missing["seeds"] == "0" and math.isnan(missing["AP50_tiny_mean"])  # missing, never 0


def test_per_run_rows_carry_the_paired_delta(study):
    runs = study_runs(study)
    assert list(runs["experiment"]) == ["r01", "r02", "r06", "r03", "r04", "r05", "a-retina-sm", "r08"]
    deltas = dict(zip(runs["experiment"], runs["delta_vs_none"]))
    assert deltas["r03"] == 3.0 and deltas["r04"] == 4.0 and deltas["r08"] == 1.5
    assert math.isnan(deltas["r05"]) and math.isnan(deltas["r01"])


def test_an_undefined_metric_is_nan_not_zero(tmp_path):
    write_run(tmp_path, "a", "faster_fpn", "none", 0, -1)  # −1: undefined (reference §6.4)
    write_run(tmp_path, "b", "faster_fpn", "sm", 0, 3.0)
    table = study_table(collect_metrics(tmp_path)).set_index(["detector", "arm"])
    assert math.isnan(table.loc[("faster_fpn", "none"), "AP50_tiny_mean"])
    assert math.isnan(table.loc[("faster_fpn", "sm"), "delta_vs_none_mean"])


def test_paper_delta_by_hand_from_reference_section_8():
    assert paper_delta("faster_fpn", "sm").value == 0.49        # exp4.1 − exp1.2: 50.30 − 49.81
    assert paper_delta("faster_fpn", "msm").value == 0.37       # exp4.2 − exp1.2: 50.18 − 49.81
    assert paper_delta("faster_fpn", "plain").value == -0.24    # older table: 47.11 − 47.35
    assert paper_delta("adaptive_retinanet", "sm").value == 6.56   # exp5.1 − exp2.3: 51.78 − 45.22
    assert paper_delta("adaptive_retinanet", "msm").value == 4.78  # exp5.2 − exp2.3: 50.00 − 45.22
    assert paper_delta("adaptive_retinanet", "plain") is None   # no plain-COCO RetinaNet row
    assert paper_delta("faster_fpn", "none") is None and paper_delta("faster_fpn", "gaussian") is None
    assert "exp4.1" in paper_delta("faster_fpn", "sm").source
    assert "max_det 200" in paper_delta("faster_fpn", "plain").source


def test_csv_has_exactly_the_columns_and_the_values(study, tmp_path):
    csv, markdown = save_study_table(study_table(study), tmp_path / "figures")
    assert csv.name == "cpu_study.csv" and markdown.name == "cpu_study.md"
    lines = csv.read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert lines[1:4] == ["faster_fpn,none,2,11.0000,1.4142,,,",
                          "faster_fpn,plain,1,9.5000,,-0.5000,,-0.2400",
                          "faster_fpn,sm,3 (Δ: 2 paired),16.3333,3.5119,3.5000,0.7071,0.4900"]
    back = pd.read_csv(csv)
    assert len(back) == 8 and back.loc[6, "paper_delta"] == 6.56 and math.isnan(back.loc[5, "paper_delta"])
    assert sorted(p.name for p in csv.parent.iterdir()) == ["cpu_study.csv", "cpu_study.md"]  # no temp files


def test_markdown_writes_missing_and_the_paper_sources(study):
    text = study_markdown(study_table(study))
    rows = text.splitlines()
    assert rows[0] == "| " + " | ".join(COLUMNS) + " |"
    assert rows[4] == "|  | sm | 3 (Δ: 2 paired) | 16.33 | 3.51 | +3.50 | 0.71 | +0.49 |"
    assert rows[5] == "|  | msm | 0 | missing |  |  |  | +0.37 |"
    assert "exp5.1 − exp2.3" in text and "docs/reference.md §8" in text


def test_duplicate_runs_of_one_seed_are_named_and_left_out(tmp_path):
    write_run(tmp_path, "exp4.0", "faster_fpn", "sm", 0, 2.0)
    write_run(tmp_path, "exp4.1", "faster_fpn", "sm", 0, 4.0)
    with pytest.warns(UserWarning, match=r"exp4\.1 \(same detector, arm and seed as exp4\.0\)"):
        runs = study_runs(collect_metrics(tmp_path))
    assert list(runs["experiment"]) == ["exp4.0"]


def test_a_record_without_its_seed_is_refused(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "metrics.json").write_text(json.dumps({"detector": "faster_fpn", "pretrain": "sm",
                                                               "metrics": {"AP50_tiny": 1.0}}))
    with pytest.raises(ValueError, match=r"old/metrics.json has no \['seed'\]"):
        study_table(collect_metrics(tmp_path))


def test_the_view_follows_the_data_root(tmp_path, study):
    assert results_view(study) == "study"
    assert results_view({}) == "paper"
    write_run(tmp_path / "real", "exp1.2", "faster_fpn", "none", 0, 40.0, data_root="data")
    real = collect_metrics(tmp_path / "real")
    assert results_view(real) == "paper"
    with pytest.raises(ValueError, match=r"mix synthetic data .* and real data \(exp1\.2\)"):
        results_view({**study, **real})


def test_figure_is_written_and_byte_stable(study, tmp_path):
    table, runs = study_table(study), study_runs(study)
    fig = plot_study(table, runs)
    ax_ap, ax_delta = fig.axes[0], fig.axes[1]
    assert [t.get_text() for t in ax_ap.get_xticklabels()] == ["none\n(n=2)", "plain\n(n=1)", "sm\n(n=3)",
                                                               "msm\n(n=0)"]
    assert [round(bar.get_height(), 4) for bar in ax_ap.patches] == [11.0, 9.5, 16.3333, 0.0]
    labels = [t.get_text() for t in ax_delta.texts]
    assert labels == ["-0.50", "+3.50", "no pairs", "-0.24", "+0.49", "+0.37"]
    assert "synthetic CPU study, 3 seeds" in fig.get_suptitle()
    first = save_figure(fig, tmp_path / "a" / "cpu_study.png").read_bytes()
    second = save_figure(plot_study(table, runs), tmp_path / "b" / "cpu_study.png").read_bytes()
    assert first[:8] == b"\x89PNG\r\n\x1a\n" and first == second


def test_figure_without_any_run_draws_the_paper_alone(tmp_path):
    fig = plot_study(study_table({}), study_runs({}))
    assert [t.get_text() for t in fig.axes[3].texts] == ["no pairs"] * 3 + ["not published", "+6.56", "+4.78"]
    assert save_figure(fig, tmp_path / "empty.png").stat().st_size > 10_000


@pytest.mark.slow
@pytest.mark.parametrize("data_root, written", [("data/synthetic", "cpu_study"), ("data", "results_table")])
def test_results_notebook_shows_one_view_once_without_stray_outputs(tmp_path, data_root, written):
    """Synthetic runs: the study; real ones: ours vs published. Either way the table is shown once
    (one Markdown output), one figure, and no cell leaves a return value (`PosixPath(...)`) behind."""
    import nbformat
    import papermill

    from tinysm.paths import repo_root

    write_run(tmp_path / "runs", "exp1.2", "faster_fpn", "none", 0, 1.0, data_root=data_root)
    write_run(tmp_path / "runs", "exp4.1", "faster_fpn", "sm", 0, 2.0, data_root=data_root)
    output = tmp_path / "results.ipynb"
    papermill.execute_notebook(str(repo_root() / "notebooks" / "results.ipynb"), str(output),
                               parameters={"runs_dir": str(tmp_path / "runs"), "figures_dir": str(tmp_path / "fig")},
                               kernel_name="python3", progress_bar=False)
    assert sorted(p.name for p in (tmp_path / "fig").iterdir()) == [f"{written}.{s}" for s in ("csv", "md", "png")]
    outputs = [o for c in nbformat.read(output, as_version=4).cells if c.cell_type == "code" for o in c.outputs]
    assert {o.output_type for o in outputs} == {"stream", "display_data"}  # no execute_result
    shown = [o for o in outputs if o.output_type == "display_data"]
    assert [sorted(o.data) for o in shown] == [["text/markdown", "text/plain"], ["image/png", "text/plain"]]
