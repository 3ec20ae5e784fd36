"""The reference's COCO pre-training file: train2017 and val2017 in one annotation file,
`annotations/instances_merge2017.json` (reference §8). COCO does not ship it; users build it.

The merged file keeps every id (COCO's are unique across its splits; a collision is an error, not a
silent renumbering, since ids name boxes in results files) and prefixes each `file_name` with its
split's folder, so that the COCO root is the merged file's image root.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

from tinysm.data.annotations import AnnotationError, CocoAnnotations, load_annotations, save_annotations
from tinysm.data.layout import MERGED_SPLIT, CocoLayout
from tinysm.io import refuse_input_as_output

SPLITS = ("train2017", "val2017")


def merge_coco_splits(coco: CocoLayout, splits: Sequence[str] = SPLITS, out: Path | None = None) -> Path:
    """Write the splits of `coco` as one file (default `coco.annotations("merge2017")`); returns its path.

    Raises AnnotationError naming the files when their categories differ or an id repeats.
    """
    out = coco.annotations(MERGED_SPLIT) if out is None else Path(out)
    inputs = {split: coco.annotations(split) for split in splits}
    refuse_input_as_output(out, {f"{split} annotation file": path for split, path in inputs.items()})
    files = {split: load_annotations(path) for split, path in inputs.items()}
    first_split, first = next(iter(files.items()))
    images, annotations = [], []
    seen_images: dict[int, str] = {}
    seen_annotations: dict[int, str] = {}
    for split, split_file in files.items():
        if split_file.categories != first.categories:
            raise AnnotationError(split_file.source, "categories",
                                  f"differ from those of {first.source}; the splits cannot be merged")
        for image in split_file.images:
            _claim(seen_images, image.id, split, "image", split_file)
            images.append(replace(image, file_name=f"{split}/{image.file_name}"))
        for box in split_file.annotations:
            _claim(seen_annotations, box.id, split, "annotation", split_file)
            annotations.append(box)
    merged = CocoAnnotations(images, annotations, list(first.categories), dict(first.extra),
                             write_categories=True)
    save_annotations(merged, out)  # atomic: an interrupted merge leaves no file that passes for whole
    return out


def _claim(seen: dict[int, str], entry_id: int, split: str, kind: str, split_file: CocoAnnotations) -> None:
    if entry_id in seen:
        raise AnnotationError(split_file.source, f"{kind} id {entry_id}",
                              f"also used in {seen[entry_id]}; ids must be unique across the merged splits")
    seen[entry_id] = split
