"""The metrics log of a training stage: JSON lines, one record per line, for plotting.

Training records carry `iteration`, `epoch`, `lr`, `loss`, the detector's loss terms,
`images_per_s` and `data_wait` (fraction of step time spent waiting for data); evaluation
records carry `iteration`, `epoch` and `eval` (the evaluator's metrics).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tinysm.io import atomic_write_text


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Every complete record of a metrics log (a line cut short by a crash is skipped)."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


class MetricsLog:
    """Appends records to `path`. Opened at `start_iteration` (a resumed run), it first drops the
    records written after that point, so the log of a resumed run reads like an uninterrupted one."""

    def __init__(self, path: str | Path, start_iteration: int = 0):
        self.path = Path(path)
        kept = [r for r in read_metrics(self.path) if r.get("iteration", 0) <= start_iteration]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def write(self, record: dict[str, Any]) -> None:
        """Append one record and flush it to the file."""
        with self.path.open("a") as stream:
            stream.write(json.dumps(record) + "\n")
