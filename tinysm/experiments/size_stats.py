"""Object-size statistics of an annotation set: absolute size √(wh), relative size √(wh/WH) and
aspect ratio w/h, over the boxes that size distributions count (crowd and ignore left out, reference §3),
and the same for a source set before and after Scale Match (notebooks/size_distribution.ipynb).
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
from tinysm.terminal import progress_bar

from tinysm.data.annotations import CocoAnnotations
from tinysm.io import atomic_path, atomic_write_text
from tinysm.scale_match import METHODS, SizeMatchSettings, SizeMatchTransform, counts_for_size, object_sizes

PERCENTILES = (5, 25, 50, 75, 95)
MATCHED_PREFIX = "source after "  # scale_matched_sets names the source after a method "source after <label>"


def box_size_columns(annotations: CocoAnnotations) -> dict[str, np.ndarray]:
    """Per counted box: `size` √(wh), `relative_size` √(wh / WH) of its image (or tile), `aspect_ratio` w/h."""
    widths, heights, image_areas = [], [], []
    for image in annotations.images:
        x1, y1, x2, y2 = image.region
        for ann in annotations.annotations_by_image[image.id]:
            if counts_for_size(ann):
                widths.append(ann.bbox[2])
                heights.append(ann.bbox[3])
                image_areas.append((x2 - x1) * (y2 - y1))
    w, h = np.asarray(widths, np.float64), np.asarray(heights, np.float64)
    area = w * h
    return {"size": np.sqrt(area), "relative_size": np.sqrt(area / np.asarray(image_areas, np.float64)),
            "aspect_ratio": w / h}


def size_statistics(annotations: CocoAnnotations) -> dict[str, float]:
    """Count, mean and std of each column of `box_size_columns`, and percentiles of the absolute size."""
    columns = box_size_columns(annotations)
    stats: dict[str, float] = {"images": float(len(annotations.images)), "boxes": float(len(columns["size"]))}
    for name, values in columns.items():
        stats[f"{name}_mean"] = float(values.mean()) if len(values) else float("nan")
        stats[f"{name}_std"] = float(values.std()) if len(values) else float("nan")
    for q in PERCENTILES:
        stats[f"size_p{q}"] = float(np.percentile(columns["size"], q)) if len(columns["size"]) else float("nan")
    return stats


def statistics_table(named: Mapping[str, CocoAnnotations]) -> pd.DataFrame:
    """One row per annotation set: boxes, size, relative size and aspect ratio as "mean ± std", percentiles."""
    rows = {}
    for name, annotations in named.items():
        stats = size_statistics(annotations)
        relative = f"{stats['relative_size_mean']:.4f} ± {stats['relative_size_std']:.4f}"
        row = {"images": int(stats["images"]), "boxes": int(stats["boxes"]),
               "size √(wh) [px]": f"{stats['size_mean']:.2f} ± {stats['size_std']:.2f}",
               "relative size √(wh/WH)": relative,
               "aspect ratio w/h": f"{stats['aspect_ratio_mean']:.2f} ± {stats['aspect_ratio_std']:.2f}"}
        row.update({f"size p{q}": round(stats[f"size_p{q}"], 2) for q in PERCENTILES})
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def scale_annotations(annotations: CocoAnnotations, transform: SizeMatchTransform,
                      progress: bool = True) -> CocoAnnotations:
    """The annotation set as the transform would make it (image sizes and boxes), without pixels.

    Crowd and ignore boxes are left out first, as training does; boxes under the floor are dropped.
    """
    images, boxes_out = [], []
    for image in progress_bar(annotations.images, desc="scale match", disable=not progress, leave=False):
        anns = [a for a in annotations.annotations_by_image[image.id] if counts_for_size(a)]
        xyxy = np.array([[x, y, x + w, y + h] for x, y, w, h in (a.bbox for a in anns)], np.float32).reshape(-1, 4)
        left, top, right, bottom = image.region
        matched = transform.match_boxes(xyxy, (bottom - top, right - left))
        images.append(replace(image, height=matched.canvas_size[0], width=matched.canvas_size[1], corner=None))
        kept = (a for a, keep in zip(anns, matched.keep) if keep)
        for ann, (x1, y1, x2, y2) in zip(kept, matched.boxes.tolist()):
            boxes_out.append(replace(ann, bbox=(x1, y1, x2 - x1, y2 - y1), area=(x2 - x1) * (y2 - y1)))
    return annotations.with_annotations(boxes_out, images)


def scale_matched_sets(target: CocoAnnotations, source: CocoAnnotations, bins: int = 100,
                       seed: int = 0) -> dict[str, CocoAnnotations]:
    """The target, the source, and the source as each method of `METHODS` (reference §4, §5) would make
    it: "source after SM", "source after MSM", ...; random methods draw from RandomState(seed)."""
    settings = SizeMatchSettings(bins=bins, rng=np.random.RandomState(seed))
    matched = {f"{MATCHED_PREFIX}{method.label}": scale_annotations(source, method.build(target, source, settings))
               for method in METHODS.values()}
    return {"target": target, "source": source, **matched}


def size_panels(sets: Mapping[str, CocoAnnotations]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """From `scale_matched_sets`: the target's and the source's object sizes, and the source's after
    each method by its label (what `tinysm.plots.sizes.plot_size_distributions` draws)."""
    sizes = {name: object_sizes(annotations) for name, annotations in sets.items()}
    matched = {name.removeprefix(MATCHED_PREFIX): values for name, values in sizes.items()
               if name.startswith(MATCHED_PREFIX)}
    return sizes["target"], sizes["source"], matched


def save_statistics_table(table: pd.DataFrame, folder: str | os.PathLike) -> tuple[Path, Path]:
    """Write `size_statistics.md` (GitHub Markdown) and `size_statistics.csv` into `folder` atomically."""
    header = ["set", *map(str, table.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, [name, *row])) + " |" for name, row in zip(table.index, table.values)]
    markdown = atomic_write_text(Path(folder) / "size_statistics.md", "\n".join(lines) + "\n")
    csv = Path(folder) / "size_statistics.csv"
    with atomic_path(csv) as tmp:
        table.to_csv(tmp, index_label="set")
    return markdown, csv
