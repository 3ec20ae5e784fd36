"""`TinyResult`: the numbers of one evaluation, as the flat dict of reference §6.4, a table, a DataFrame, curves."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinysm.evaluation.protocol import RANGE_ORDER, metric_key

UNDEFINED = -1.0


@dataclass(frozen=True)
class TinyResult:
    """AP (reference §6.1) and MR (reference §6.2) of one detection file, in percent; −1 marks "undefined".

    Attributes, for tables and plots (T thresholds, A AP ranges, S MR setups):
    - `iou_thresholds` (T,), `ap_ranges` (A names), `mr_setups` (S names)
    - `ap` (T, A) and `mr` (T, S): percent, −1 where the range has no regular GT
    - `recall_thresholds` (101,) and `precision` (T, A, 101): the interpolated precision-recall curve
      (mean over categories; −1 where undefined). Plot `precision[t, a]` against `recall_thresholds`.
    - `fppi_points` (9,) and `miss_rate` (T, S, 9): the points the MR averages.
    - `fppi_grid` (F,) and `miss_rate_curve` (T, S, F): the miss-rate/FPPI curve on a dense log grid
      (same reading rule as the 9 points), for plots. −1 where undefined.
    - `max_dets`, `reference_quirks`, `n_images`: how it was computed.
    `pr_curve(iou, range)` and `mr_curve(iou, setup)` return these curves as (x, y) pairs.
    """

    iou_thresholds: np.ndarray
    ap_ranges: tuple[str, ...]
    mr_setups: tuple[str, ...]
    ap: np.ndarray
    mr: np.ndarray
    recall_thresholds: np.ndarray
    precision: np.ndarray
    fppi_points: np.ndarray
    miss_rate: np.ndarray
    fppi_grid: np.ndarray
    miss_rate_curve: np.ndarray
    max_dets: int
    reference_quirks: bool
    n_images: int

    @property
    def metrics(self) -> dict[str, float]:
        """The flat dict of reference §6.4: `AP50_tiny`-style keys, percent at full precision, −1 undefined."""
        out: dict[str, float] = {}
        for kind, names, values in (("AP", self.ap_ranges, self.ap), ("MR", self.mr_setups, self.mr)):
            for t, iou in enumerate(self.iou_thresholds):
                for name in _in_table_order(names):
                    out[metric_key(kind, float(iou), name)] = float(values[t, names.index(name)])
        return out

    def as_dict(self) -> dict[str, float]:
        """Same as `metrics` (a fresh dict)."""
        return dict(self.metrics)

    def to_frame(self):
        """A tidy pandas DataFrame: one row per number, columns metric, iou, range, value (NaN if undefined)."""
        import pandas as pd

        rows = []
        for kind, names, values in (("AP", self.ap_ranges, self.ap), ("MR", self.mr_setups, self.mr)):
            for t, iou in enumerate(self.iou_thresholds):
                for name in _in_table_order(names):
                    value = float(values[t, names.index(name)])
                    rows.append({"metric": kind, "iou": float(iou), "range": name,
                                 "value": np.nan if value == UNDEFINED else value})
        return pd.DataFrame(rows, columns=["metric", "iou", "range", "value"])

    def table(self) -> str:
        """The numbers in the paper's layout: a row per metric and threshold, a column per size range."""
        columns = [name for name in RANGE_ORDER if name in self.ap_ranges or name in self.mr_setups]
        header = f"{'':8s}" + "".join(f"{name:>11s}" for name in columns)
        lines = [f"TinyPerson evaluation: {self.n_images} images, max_dets {self.max_dets} (MR: 1000), "
                 f"reference_quirks={self.reference_quirks}", header]
        for kind, names, values in (("AP", self.ap_ranges, self.ap), ("MR", self.mr_setups, self.mr)):
            for t, iou in enumerate(self.iou_thresholds):
                cells = [_format(values[t, names.index(name)]) if name in names else "" for name in columns]
                lines.append(f"{kind}{round(float(iou) * 100):d}".ljust(8) + "".join(f"{c:>11s}" for c in cells))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def pr_curve(self, iou: float, range_name: str) -> tuple[np.ndarray, np.ndarray]:
        """(recall, precision) of one threshold and AP range."""
        return self.recall_thresholds, self.precision[self._iou_index(iou), self.ap_ranges.index(range_name)]

    def mr_curve(self, iou: float, setup: str) -> tuple[np.ndarray, np.ndarray]:
        """(fppi, miss rate) of one threshold and MR setup, on `fppi_grid`."""
        return self.fppi_grid, self.miss_rate_curve[self._iou_index(iou), self.mr_setups.index(setup)]

    def _iou_index(self, iou: float) -> int:
        hits = np.flatnonzero(np.isclose(self.iou_thresholds, iou))
        if not len(hits):
            raise ValueError(f"IoU threshold {iou} was not evaluated; have {self.iou_thresholds.tolist()}")
        return int(hits[0])


def _in_table_order(names: tuple[str, ...]) -> list[str]:
    return sorted(names, key=lambda name: RANGE_ORDER.index(name) if name in RANGE_ORDER else len(RANGE_ORDER))


def _format(value: float) -> str:
    return "–" if value == UNDEFINED else f"{value:.2f}"
