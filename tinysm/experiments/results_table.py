"""The paper's table from finished runs: every `<runs_dir>/*/metrics.json` against reference §8.

A run that has not finished is *missing* (NaN in the frame, "missing" in the Markdown), never 0;
an undefined metric (−1 in metrics.json, reference §6.4) is NaN too and prints as "–".
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from tinysm.experiments.config import PAPER_ROWS
from tinysm.io import atomic_path, atomic_write_text

HEADLINE = "AP50_tiny"
# The extra columns of the seed's tables: AP at the other IoUs, the tiny sub-ranges, the miss rate.
DETAIL_METRICS = ("AP25_tiny", "AP75_tiny", "AP50_tiny1", "AP50_tiny2", "AP50_tiny3", "MR50_tiny")


def collect_metrics(runs_dir: str | Path) -> dict[str, dict]:
    """`{experiment: metrics.json contents}` for every finished run in `runs_dir`."""
    found = {}
    for path in sorted(Path(runs_dir).glob("*/metrics.json")):
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(record, dict) or not isinstance(record.get("metrics"), dict):
            raise ValueError(f"{path}: expected an object with a 'metrics' mapping")
        found[path.parent.name] = record
    return found


def _value(metrics: dict, key: str) -> float:
    value = metrics.get(key)
    return float("nan") if value is None or value < 0 else float(value)


def _backbone(record: dict | None) -> str:
    """How the run's backbone started: the paper's rows assume ImageNet weights, CPU runs have none."""
    if not record:
        return ""
    if "backbone" not in record:
        return "?"
    weights = record.get("backbone_weights")
    start = "random init" if weights is None else "ImageNet" if weights == "imagenet" else f"from {Path(weights).name}"
    return f"{record['backbone']}, {start}"


def results_table(records: dict[str, dict]) -> pd.DataFrame:
    """One row per paper experiment (reference §8 order, grouped by detector), then any other run."""
    names = list(PAPER_ROWS) + sorted(set(records) - set(PAPER_ROWS))
    rows = []
    for name in names:
        paper = PAPER_ROWS.get(name)
        record = records.get(name)
        metrics = record["metrics"] if record else {}
        ours = _value(metrics, HEADLINE)
        published = paper.ap50_tiny if paper else float("nan")
        rows.append({
            "experiment": name,
            "detector": paper.detector if paper else (record or {}).get("detector", ""),
            "pre-training": paper.pretraining if paper else (record or {}).get("pretrain", ""),
            "AP50_tiny ours": ours, "published": published, "Δ": ours - published,
            **{key: _value(metrics, key) for key in DETAIL_METRICS},
            "data": record.get("data_root", "?") if record else "missing",
            "backbone": _backbone(record),
        })
    return pd.DataFrame(rows)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.2f}"
    return str(value)


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub Markdown table; the detector is written once per group, as in the seed's table."""
    columns = list(table.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    previous_detector = None
    for row in table.itertuples(index=False):
        cells = []
        for column, value in zip(columns, row):
            if column == "detector":
                cells.append(value if value != previous_detector else "")
                previous_detector = value
            elif row.data == "missing" and column not in ("experiment", "pre-training", "published", "data"):
                cells.append("missing" if column == "AP50_tiny ours" else "")
            elif column == "Δ" and not math.isnan(value):
                cells.append(f"{value:+.2f}")
            else:
                cells.append(_cell(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def save_results_table(table: pd.DataFrame, figures_dir: str | Path) -> tuple[Path, Path]:
    """Write `results_table.md` and `results_table.csv` (missing values left empty) atomically."""
    folder = Path(figures_dir)
    markdown = atomic_write_text(folder / "results_table.md", to_markdown(table))
    csv = folder / "results_table.csv"
    with atomic_path(csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    return markdown, csv
