"""The synthetic CPU study (issue 13): both detectors × the pre-training arms × several seeds, set
against the no-pre-training arm of the same detector and seed, beside the paper's own Δ.

On synthetic data and a short CPU schedule the absolute AP50_tiny says nothing about the paper's
numbers; what can compare like with like is the *gain* of an arm over no COCO pre-training. So the
Δ is taken per seed (arm seed s − `none` seed s of the same detector: the same fine-tuning data
order and initialisation), then averaged; a seed without a `none` partner stays in the arm's AP but
not in its Δ, and the `seeds` column says so. Runs are grouped by their record's `detector` and
`pretrain`, never by their folder's name.

The paper's Δ (reference §8) is vs an ImageNet backbone, the study's `none` arm is a random init
(offline): the figure and the Markdown say which is which.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Literal, Mapping, NamedTuple

import pandas as pd

from tinysm.experiments.config import PAPER_ROWS, PRETRAININGS, TINYBENCHMARK_ROWS
from tinysm.experiments.results_table import HEADLINE
from tinysm.io import atomic_path, atomic_write_text
from tinysm.models.build import DETECTORS

BASELINE = "none"
# The study's design: every detector runs these arms; an arm without runs shows as missing, never as 0.
STUDY_ARMS = ("none", "plain", "sm", "msm")
COLUMNS = ("detector", "arm", "seeds", "AP50_tiny_mean", "AP50_tiny_std", "delta_vs_none_mean",
           "delta_vs_none_std", "paper_delta")
REQUIRED_KEYS = ("detector", "pretrain", "seed")
# The seed's rows that stand for each arm (reference §8): Faster-FPN's SM is the 4×2 row (exp4.1), the
# COCO batch of every other size-matched row, so that SM and MSM differ in the method alone.
SEED_ROWS: dict[tuple[str, str], str] = {
    ("faster_fpn", "none"): "exp1.2", ("faster_fpn", "sm"): "exp4.1", ("faster_fpn", "msm"): "exp4.2",
    ("adaptive_retinanet", "none"): "exp2.3", ("adaptive_retinanet", "sm"): "exp5.1",
    ("adaptive_retinanet", "msm"): "exp5.2",
}

View = Literal["study", "paper"]


class PaperDelta(NamedTuple):
    """The paper's gain of an arm over the ImageNet-only row of the same detector, and where it is from."""

    value: float
    source: str


def paper_delta(detector: str, arm: str) -> PaperDelta | None:
    """The published Δ AP50_tiny of `arm` over no COCO pre-training for `detector` (reference §8).

    The seed's table (max_det 1000) when it has both rows, else TinyBenchmark's older table
    (max_det 200), the only one with plain COCO pre-training; None when neither has the comparison
    (the baseline itself, Adaptive RetinaNet's plain COCO, a method the paper did not run).
    """
    if arm == BASELINE:
        return None
    row, base = SEED_ROWS.get((detector, arm)), SEED_ROWS.get((detector, BASELINE))
    if row and base:
        # Published to two decimals: rounding keeps the difference exact (50.30 − 49.81 = 0.49).
        return PaperDelta(round(PAPER_ROWS[row].ap50_tiny - PAPER_ROWS[base].ap50_tiny, 2),
                          f"{row} − {base}, max_det 1000")
    ours, base_value = TINYBENCHMARK_ROWS.get((detector, arm)), TINYBENCHMARK_ROWS.get((detector, BASELINE))
    if ours is not None and base_value is not None:
        return PaperDelta(round(ours - base_value, 2), "TinyBenchmark README, max_det 200")
    return None


def is_synthetic(records: Mapping[str, dict]) -> bool:
    """Whether there are runs and every one of them ran on synthetic data (its `data_root` says so)."""
    return bool(records) and all("synthetic" in str(r.get("data_root", "")) for r in records.values())


def results_view(records: Mapping[str, dict]) -> View:
    """What the results notebook shows: the study on synthetic runs, ours vs published on real ones
    (and on an empty folder, where every paper row is missing). A folder mixing both is refused:
    synthetic numbers never stand beside the published ones."""
    synthetic = sorted(name for name, r in records.items() if "synthetic" in str(r.get("data_root", "")))
    if synthetic and len(synthetic) < len(records):
        real = sorted(set(records) - set(synthetic))
        raise ValueError(f"the runs mix synthetic data ({', '.join(synthetic)}) and real data "
                         f"({', '.join(real)}); keep one data set per runs folder")
    return "study" if is_synthetic(records) else "paper"


def _order(values: set[str], first: tuple[str, ...]) -> list[str]:
    return [v for v in first if v in values] + sorted(values - set(first))


def _ap(record: dict) -> float:
    value = record["metrics"].get(HEADLINE)
    return float("nan") if value is None or value < 0 else float(value)  # −1: undefined (reference §6.4)


def study_runs(records: Mapping[str, dict]) -> pd.DataFrame:
    """One row per run: `experiment, detector, arm, seed, AP50_tiny, delta_vs_none` (NaN without a
    `none` run of the same detector and seed; NaN for the `none` runs themselves).

    A study has one run per detector, arm and seed; when several runs share them (the paper's rows
    exp4.0 and exp4.1 are both Faster-FPN with SM), the first by experiment name is used and the
    others are named in a warning.
    """
    kept: dict[tuple[str, str, int], str] = {}
    left_out = []
    for name in sorted(records):
        record = records[name]
        missing = [key for key in REQUIRED_KEYS if key not in record]
        if missing:
            raise ValueError(f"{name}/metrics.json has no {missing}: rerun it to record them")
        key = (record["detector"], record["pretrain"], int(record["seed"]))
        if key in kept:
            left_out.append(f"{name} (same detector, arm and seed as {kept[key]})")
        else:
            kept[key] = name
    if left_out:
        warnings.warn(f"left out of the study: {'; '.join(left_out)}", stacklevel=2)
    ap = {key: _ap(records[name]) for key, name in kept.items()}
    rows = []
    for (detector, arm, seed), name in kept.items():
        base = ap.get((detector, BASELINE, seed), float("nan")) if arm != BASELINE else float("nan")
        rows.append({"experiment": name, "detector": detector, "arm": arm, "seed": seed,
                     HEADLINE: ap[(detector, arm, seed)], "delta_vs_none": ap[(detector, arm, seed)] - base})
    columns = ["experiment", "detector", "arm", "seed", HEADLINE, "delta_vs_none"]
    runs = pd.DataFrame(rows, columns=columns)
    runs["seed"] = runs["seed"].astype(int)
    return _sorted(runs)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """Detectors in DETECTORS order, arms none, plain, then the size-matching methods; seeds ascending."""
    detectors = _order(set(frame["detector"]), tuple(DETECTORS))
    arms = _order(set(frame["arm"]), PRETRAININGS)
    keys = frame.assign(_detector=frame["detector"].map(detectors.index), _arm=frame["arm"].map(arms.index))
    by = ["_detector", "_arm", *(["seed"] if "seed" in frame else [])]
    return frame.loc[keys.sort_values(by, kind="stable").index].reset_index(drop=True)


def _mean_std(values: pd.Series) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1); NaN where there are too few values."""
    array = values.to_numpy(float)
    mean = float(array.mean()) if array.size else math.nan
    std = float(array.std(ddof=1)) if array.size > 1 else math.nan
    return mean, std


def _seeds(count: int, paired: int, arm: str) -> str:
    """The seed count, and how many of them enter the Δ when some lack a `none` partner."""
    return str(count) if arm == BASELINE or paired == count else f"{count} (Δ: {paired} paired)"


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """The study table of `study_runs`' rows: one row per detector × arm (`COLUMNS`), every arm of
    `STUDY_ARMS` for every detector that has runs (every detector when none has), missing arms with
    0 seeds and empty values."""
    detectors = set(runs["detector"]) or set(DETECTORS)
    combos = {(d, a) for d in detectors for a in STUDY_ARMS} | set(zip(runs["detector"], runs["arm"]))
    rows = []
    for detector, arm in combos:
        runs_here = runs[(runs["detector"] == detector) & (runs["arm"] == arm)]
        ap_mean, ap_std = _mean_std(runs_here[HEADLINE])
        if arm == BASELINE:
            paired, (delta_mean, delta_std) = len(runs_here), (math.nan, math.nan)
        else:
            partners = set(runs.loc[(runs["detector"] == detector) & (runs["arm"] == BASELINE), "seed"])
            pairs = runs_here[runs_here["seed"].isin(partners)]
            paired, (delta_mean, delta_std) = len(pairs), _mean_std(pairs["delta_vs_none"])
        published = paper_delta(detector, arm)
        rows.append({"detector": detector, "arm": arm, "seeds": _seeds(len(runs_here), paired, arm),
                     "AP50_tiny_mean": ap_mean, "AP50_tiny_std": ap_std, "delta_vs_none_mean": delta_mean,
                     "delta_vs_none_std": delta_std,
                     "paper_delta": published.value if published else math.nan})
    return _sorted(pd.DataFrame(rows, columns=list(COLUMNS)))


def study_table(records: Mapping[str, dict]) -> pd.DataFrame:
    """The study table of a runs folder's records (`collect_metrics`): see `summarize`."""
    return summarize(study_runs(records))


def _number(value: float, signed: bool = False) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def study_markdown(table: pd.DataFrame) -> str:
    """The table in GitHub Markdown (the CSV's columns; the detector once per group, Δs signed, an
    arm without runs "missing"), then where each paper Δ comes from."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    previous = None
    for row in table.itertuples(index=False):
        missing = row.seeds == "0"
        cells = [row.detector if row.detector != previous else "", row.arm, row.seeds,
                 "missing" if missing else _number(row.AP50_tiny_mean),
                 "" if missing else _number(row.AP50_tiny_std),
                 "" if missing else _number(row.delta_vs_none_mean, signed=True),
                 "" if missing else _number(row.delta_vs_none_std),
                 _number(row.paper_delta, signed=True)]
        previous = row.detector
        lines.append("| " + " | ".join(cells) + " |")
    sources = [f"{d} {a}: {p.source}" for d, a in zip(table["detector"], table["arm"])
               if (p := paper_delta(d, a)) is not None]
    lines += ["", f"Δ: an arm's AP50_tiny minus the `{BASELINE}` run of the same detector and seed, mean and "
              "sample std over the paired seeds (the baseline's own Δ is blank). paper_delta: the published "
              "gain over an ImageNet backbone without COCO pre-training (docs/reference.md §8): "
              + "; ".join(sources) + "."]
    return "\n".join(lines) + "\n"


def save_study_table(table: pd.DataFrame, figures_dir: str | Path, name: str = "cpu_study") -> tuple[Path, Path]:
    """Write `<name>.csv` (exactly `COLUMNS`, empty for NaN) and `<name>.md`, each atomically."""
    folder = Path(figures_dir)
    csv = folder / f"{name}.csv"
    with atomic_path(csv) as tmp:
        table.loc[:, list(COLUMNS)].to_csv(tmp, index=False, float_format="%.4f")
    markdown = atomic_write_text(folder / f"{name}.md", study_markdown(table))
    return csv, markdown
