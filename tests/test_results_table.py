"""The paper's table from runs: published numbers, Δ, missing runs never shown as zeros."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from tinysm.experiments.config import PAPER_ROWS
from tinysm.experiments.results_table import collect_metrics, results_table, save_results_table, to_markdown


def write_run(runs, name, metrics, data_root="data/synthetic", **record):
    folder = runs / name
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"experiment": name, "data_root": data_root,
                                                     "metrics": metrics, **record}))


def test_table_has_every_paper_row_in_the_seeds_order_with_delta(tmp_path):
    write_run(tmp_path, "exp5.1", {"AP50_tiny": 40.5, "AP25_tiny": 60.25, "MR50_tiny": 88.0})
    table = results_table(collect_metrics(tmp_path))
    assert list(table["experiment"]) == ["exp1.2", "exp4.0", "exp4.1", "exp4.2", "exp2.3", "exp5.1", "exp5.2"]
    row = table.set_index("experiment").loc["exp5.1"]
    assert row["AP50_tiny ours"] == 40.5 and row["published"] == 51.78
    assert row["Δ"] == pytest.approx(40.5 - 51.78)
    assert row["AP25_tiny"] == 60.25 and row["MR50_tiny"] == 88.0
    assert (row["detector"], row["pre-training"], row["data"]) == ("Adap RetinaNet-c", "COCO + SM, 4×2",
                                                                   "data/synthetic")


def test_missing_runs_and_undefined_metrics_are_nan_not_zero(tmp_path):
    write_run(tmp_path, "exp1.2", {"AP50_tiny": 0.0, "AP75_tiny": -1})  # -1: undefined (reference §6.4)
    table = results_table(collect_metrics(tmp_path)).set_index("experiment")
    assert table.loc["exp1.2", "AP50_tiny ours"] == 0.0  # a real zero stays a zero
    assert math.isnan(table.loc["exp1.2", "AP75_tiny"])
    missing = table.loc["exp4.0"]
    assert missing["data"] == "missing" and math.isnan(missing["AP50_tiny ours"]) and math.isnan(missing["Δ"])
    assert missing["published"] == PAPER_ROWS["exp4.0"].ap50_tiny


def test_markdown_groups_by_detector_and_writes_missing(tmp_path):
    write_run(tmp_path, "exp4.0", {"AP50_tiny": 12.345, "AP75_tiny": -1}, data_root="data")
    lines = to_markdown(results_table(collect_metrics(tmp_path))).splitlines()
    assert len(lines) == 2 + len(PAPER_ROWS)
    cells = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in lines[2:]}
    assert cells["exp1.2"][1] == "Faster-FPN" and cells["exp4.0"][1] == ""  # detector once per group
    assert cells["exp2.3"][1] == "Adap RetinaNet-c"
    assert cells["exp4.0"][3:6] == ["12.35", "50.85", "-38.51"]  # ours, published, signed Δ
    assert cells["exp4.0"][7] == "–"  # undefined AP75_tiny
    assert cells["exp4.1"][3] == "missing" and set(cells["exp4.1"][5:12]) == {""}


def test_backbone_column_says_how_the_backbone_started(tmp_path):
    write_run(tmp_path, "exp1.2", {"AP50_tiny": 1.0}, backbone="resnet18", backbone_weights=None)
    write_run(tmp_path, "exp2.3", {"AP50_tiny": 2.0}, backbone="resnet50", backbone_weights="imagenet")
    write_run(tmp_path, "exp4.2", {"AP50_tiny": 2.5}, backbone="resnet50", backbone_weights="/w/resnet50-0676ba61.pth")
    write_run(tmp_path, "exp5.1", {"AP50_tiny": 3.0})  # a record from before the column existed
    table = results_table(collect_metrics(tmp_path)).set_index("experiment")["backbone"]
    assert (table["exp1.2"], table["exp2.3"], table["exp4.2"], table["exp5.1"], table["exp4.0"]) == (
        "resnet18, random init", "resnet50, ImageNet", "resnet50, from resnet50-0676ba61.pth", "?", "")


def test_runs_outside_the_paper_follow_its_rows(tmp_path):
    write_run(tmp_path, "my-ablation", {"AP50_tiny": 30.0})
    table = results_table(collect_metrics(tmp_path))
    assert table.iloc[-1]["experiment"] == "my-ablation" and math.isnan(table.iloc[-1]["published"])


def test_saved_csv_round_trips_with_missing_values_empty(tmp_path):
    write_run(tmp_path / "runs", "exp4.2", {"AP50_tiny": 25.0})
    markdown, csv = save_results_table(results_table(collect_metrics(tmp_path / "runs")), tmp_path / "fig")
    back = pd.read_csv(csv).set_index("experiment")
    assert back.loc["exp4.2", "AP50_tiny ours"] == 25.0 and back.loc["exp4.2", "Δ"] == pytest.approx(-25.18)
    assert math.isnan(back.loc["exp1.2", "AP50_tiny ours"])
    assert ",,missing" in csv.read_text().splitlines()[1]
    assert markdown.read_text().startswith("| experiment | detector |")


def test_a_broken_metrics_file_is_named(tmp_path):
    (tmp_path / "exp1.2").mkdir()
    (tmp_path / "exp1.2" / "metrics.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"exp1\.2/metrics\.json: not valid JSON"):
        collect_metrics(tmp_path)
    (tmp_path / "exp1.2" / "metrics.json").write_text('{"AP50_tiny": 3}')
    with pytest.raises(ValueError, match="expected an object with a 'metrics' mapping"):
        collect_metrics(tmp_path)
