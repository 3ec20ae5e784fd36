"""Where the official TinyPerson and COCO 2017 releases keep their files (reference §1.1).

The synthetic generator writes the same layout, so real and synthetic data go through one loader.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TinyPersonLayout:
    """Paths inside a `tiny_set/` folder, as the official release and the reference scripts have them."""

    root: Path

    @property
    def train_images(self) -> Path:  # file_name in the train JSONs is relative to this
        return self.root / "train"

    @property
    def erase_train_images(self) -> Path:
        return self.root / "erase_with_uncertain_dataset" / "train"

    @property
    def test_images(self) -> Path:
        return self.root / "test"

    @property
    def train_annotations(self) -> Path:  # raw categories sea/earth, every flag
        return self.root / "annotations" / "tiny_set_train.json"

    @property
    def test_annotations(self) -> Path:   # "all" task, with ignore/uncertain boxes
        return self.root / "annotations" / "task" / "tiny_set_test_all.json"

    @property
    def train_erase_annotations(self) -> Path:
        return self.root / "mini_annotations" / "tiny_set_train_all_erase.json"

    @property
    def train_tile_annotations(self) -> Path:  # 640x512 tiles, overlap 50 (reference §2.1)
        return self.root / "mini_annotations" / "tiny_set_train_sw640_sh512_all_erase.json"

    @property
    def mini_test_annotations(self) -> Path:
        return self.root / "mini_annotations" / "tiny_set_test_all.json"

    def exists(self) -> bool:
        return self.test_annotations.is_file() and self.train_images.is_dir()


# The reference pre-trains on train2017 + val2017 merged into one file, whose file names carry
# their split's folder, so its images are found from the COCO root (reference §8).
MERGED_SPLIT = "merge2017"


@dataclass(frozen=True)
class CocoLayout:
    """Paths inside a COCO 2017 folder (`annotations/instances_<split>.json`, `<split>/*.jpg`)."""

    root: Path

    def annotations(self, split: str = "train2017") -> Path:
        return self.root / "annotations" / f"instances_{split}.json"

    def images(self, split: str = "train2017") -> Path:
        """The folder the split's `file_name`s are relative to (the root for the merged file)."""
        return self.root if split == MERGED_SPLIT else self.root / split

    def exists(self) -> bool:
        return self.annotations().is_file() and self.images().is_dir()


def layouts(root: str | Path) -> tuple[TinyPersonLayout, CocoLayout]:
    """The two datasets under one data root: `root/tiny_set` and `root/coco` (reference §1.1)."""
    root = Path(root)
    return TinyPersonLayout(root / "tiny_set"), CocoLayout(root / "coco")


@dataclass(frozen=True)
class DataRoots:
    """The two datasets an experiment uses, and whether they are the real ones."""

    tiny_set: TinyPersonLayout
    coco: CocoLayout
    synthetic: bool


def find_data(data_dir: str | Path = "data", synthetic_dir: str | Path | None = None) -> DataRoots:
    """Real data when `data_dir/tiny_set` and `data_dir/coco` exist, else the synthetic set's roots.

    The synthetic set (written by `tinysm synth`) lives in `data_dir/synthetic` unless given.
    """
    data_dir = Path(data_dir)
    real = DataRoots(*layouts(data_dir), False)
    if real.tiny_set.exists() and real.coco.exists():
        return real
    return DataRoots(*layouts(Path(synthetic_dir) if synthetic_dir is not None else data_dir / "synthetic"), True)
