"""Run folders for the experiment-layer tests: a data root whose files exist (empty placeholders:
enough for the checks made before a run starts, not for training)."""
from __future__ import annotations

from pathlib import Path

from tinysm.data.layout import MERGED_SPLIT, layouts


def write_data_layout(root: Path) -> Path:
    """The files and folders of reference §1.1's layout that an experiment reads, under `root`."""
    tiny_set, coco = layouts(root)
    for folder in (tiny_set.test_images, tiny_set.erase_train_images, tiny_set.train_images, coco.images()):
        folder.mkdir(parents=True, exist_ok=True)
    for file in (tiny_set.test_annotations, tiny_set.train_tile_annotations, tiny_set.train_erase_annotations,
                 coco.annotations(), coco.annotations(MERGED_SPLIT)):
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text("{}")
    return root
