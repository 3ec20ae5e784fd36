"""notebooks/size_distribution.ipynb runs under papermill on a small COCO pair and writes its files."""
from __future__ import annotations

import json

import pandas as pd
import papermill
import pytest

from size_fixtures import coco_with_sizes
from tinysm.paths import repo_root

NOTEBOOK = repo_root() / "notebooks" / "size_distribution.ipynb"


@pytest.mark.slow
def test_notebook_writes_figure_and_statistics(tmp_path):
    target, source = tmp_path / "target.json", tmp_path / "source.json"
    target.write_text(json.dumps(coco_with_sizes(0, 20, 30, 2.0, 0.5)))
    source.write_text(json.dumps(coco_with_sizes(1, 60, 5, 3.8, 0.8, width=640, height=480)))
    out = tmp_path / "figures"
    papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "executed.ipynb"), kernel_name="python3",
                               parameters={"target_annotations": str(target), "source_annotations": str(source),
                                           "bins": 50, "seed": 1, "output_dir": str(out)},
                               cwd=str(tmp_path), progress_bar=False)
    assert (out / "size_distribution.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "size_distribution.pdf").read_bytes()[:5] == b"%PDF-"
    table = pd.read_csv(out / "size_statistics.csv", index_col="set")
    assert list(table.index) == ["target", "source", "source after SM", "source after MSM", "source after Gaussian SM"]
    assert table.loc["target", "boxes"] == 600 and table.loc["source", "boxes"] == 300
    # Matching shrinks the source towards the target: medians e^3.8 ≈ 45 px before, near e^2 ≈ 7 px after.
    assert table.loc["source", "size p50"] > 30
    for matched in ("source after SM", "source after MSM"):
        assert abs(table.loc[matched, "size p50"] - table.loc["target", "size p50"]) < 3
    assert (out / "size_statistics.md").read_text().startswith("| set | images | boxes |")

