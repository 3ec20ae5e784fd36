"""Synthetic TinyPerson and COCO data in the official layouts, so everything runs without downloads.

`generate(out_dir)` writes `out_dir/tiny_set/` (reference §1.1, read with `TinyPersonLayout`) and
`out_dir/coco/` (COCO 2017, read with `CocoLayout`): drawn people at sea and on beaches, tiny in
1280×720–1920×1080 frames, and COCO-like objects about five times larger in ~640×480 frames.
The same seed gives byte-identical files, whatever the number of worker processes.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tinysm.data.coco_merge import merge_coco_splits
from tinysm.data.layout import CocoLayout, TinyPersonLayout
from tinysm.data.summary import DatasetSummary, summarize
from tinysm.data.synth.coco import CocoSceneConfig, write_coco
from tinysm.data.synth.scenes import TinyPersonSceneConfig
from tinysm.data.synth.tinyperson import write_tinyperson
from tinysm.data.synth.workers import FramePool

__all__ = ["CocoSceneConfig", "SyntheticDataset", "TinyPersonSceneConfig", "generate"]


@dataclass(frozen=True)
class SyntheticDataset:
    """Where a generated set lives, what is in it, and how long it took."""

    root: Path
    tiny_set: TinyPersonLayout
    coco: CocoLayout
    seed: int
    seconds: float
    summaries: tuple[DatasetSummary, ...]

    def format(self) -> str:
        """The summaries of every annotation file, then where the data is."""
        blocks = [summary.format() for summary in self.summaries]
        blocks.append(f"seed {self.seed}: {self.tiny_set.root} and {self.coco.root} in {self.seconds:.1f} s")
        return "\n".join(blocks)


def generate(out_dir: str | Path, seed: int = 0, train: int = 100, test: int = 100, coco_train: int = 400,
             coco_val: int = 50, workers: int = 2, overwrite: bool = False,
             tiny_config: TinyPersonSceneConfig = TinyPersonSceneConfig(),
             coco_config: CocoSceneConfig = CocoSceneConfig()) -> SyntheticDataset:
    """Write `out_dir/tiny_set` and `out_dir/coco` from `seed`; returns their layouts and summaries.

    Everything is written to a staging folder inside `out_dir` first and moved into place at the
    end, so an interrupted run leaves no half dataset that would pass for a whole one. Existing
    folders are replaced only with `overwrite=True`.
    """
    for name, value in (("seed", seed), ("train", train), ("test", test), ("coco_train", coco_train),
                        ("coco_val", coco_val)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    pool = FramePool(workers)  # checks `workers` before anything is written
    out = Path(out_dir)
    targets = {"tiny_set": out / "tiny_set", "coco": out / "coco"}
    existing = [str(path) for path in targets.values() if path.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{' and '.join(existing)} already exist(s); pass overwrite=True "
                              "(tinysm synth --overwrite) to replace")
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".synth-staging-", dir=out))
    try:
        with pool:
            tiny = write_tinyperson(staging / "tiny_set", seed, train, test, pool, tiny_config)
            coco = write_coco(staging / "coco", seed, coco_train, coco_val, pool, coco_config)
            merge_coco_splits(CocoLayout(staging / "coco"))  # what a user builds with tinysm merge-coco
        for name, target in targets.items():
            if target.exists():
                target.rename(staging / f"replaced-{name}")  # deleted with the staging folder
            (staging / name).rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    summaries = (
        summarize(tiny["train_annotations"], "tiny_set train (raw)"),
        summarize(tiny["train_tile_annotations"], "tiny_set train tiles (all, erase)"),
        summarize(tiny["test_annotations"], "tiny_set test (all)"),
        *(summarize(annotations, f"coco {split}") for split, annotations in coco.items()),
    )
    return SyntheticDataset(out, TinyPersonLayout(targets["tiny_set"]), CocoLayout(targets["coco"]), seed,
                            time.perf_counter() - start, summaries)
