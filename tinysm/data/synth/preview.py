"""A picture of a generated set: crops around people of every size, a whole frame and COCO frames.

Reads the files back through `load_annotations`, so what is shown is what a loader sees.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tinysm.data.annotations import BoxAnnotation, CocoAnnotations, load_annotations
from tinysm.data.images import read_rgb_array
from tinysm.data.layout import CocoLayout, TinyPersonLayout
from tinysm.io import atomic_path

CROP = 72  # px of the frame around each person: about a tenth of a 640x512 training tile
_EDGE_COLOURS = {"regular": "#39ff14", "ignore": "#ff2d2d", "uncertain": "#ffa500", "logo": "#ff00ff"}


def _kind(ann: BoxAnnotation) -> str:
    if ann.logo:
        return "logo"
    if ann.ignore or ann.iscrowd:
        return "ignore"
    return "uncertain" if ann.uncertain else "regular"


def _pick_examples(annotations: CocoAnnotations, count: int) -> list[BoxAnnotation]:
    """Regular people at evenly spaced size quantiles, plus one ignore crowd and one uncertain blob."""
    regular = sorted((a for a in annotations.annotations if _kind(a) == "regular" and not a.in_dense_image),
                     key=lambda a: a.bbox[2] * a.bbox[3])
    special = [next((a for a in annotations.annotations if _kind(a) == kind), None) for kind in ("ignore", "uncertain")]
    special = [a for a in special if a is not None]
    wanted = count - len(special)
    if not regular:
        return special
    picks = [regular[int(i)] for i in np.linspace(0, len(regular) - 1, wanted)]
    return picks + special


def _draw_boxes(axis, annotations: list[BoxAnnotation], offset: tuple[float, float] = (0, 0),
                linewidth: float = 1.0, labels: dict[int, str] | None = None) -> None:
    from matplotlib.patches import Rectangle

    for ann in annotations:
        x, y, w, h = ann.bbox
        colour = _EDGE_COLOURS[_kind(ann)]
        axis.add_patch(Rectangle((x - offset[0] - 0.5, y - offset[1] - 0.5), w, h, fill=False,
                                 edgecolor=colour, linewidth=linewidth))
        if labels is not None:
            axis.text(x, y - 2, labels.get(ann.category_id, str(ann.category_id)), color=colour, fontsize=6)


def _crop(pixels: np.ndarray, ann: BoxAnnotation) -> tuple[np.ndarray, tuple[int, int]]:
    height, width = pixels.shape[:2]
    x, y, w, h = ann.bbox
    x0 = int(min(max(x + w / 2 - CROP / 2, 0), width - CROP))
    y0 = int(min(max(y + h / 2 - CROP / 2, 0), height - CROP))
    return pixels[y0:y0 + CROP, x0:x0 + CROP], (x0, y0)


def save_examples_figure(tiny_set: TinyPersonLayout, coco: CocoLayout, path: str | Path,
                         crops: int = 12) -> Path:
    """Save a PNG: `crops` zoomed crops (boxes drawn), one whole test frame and two COCO frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    test = load_annotations(tiny_set.test_annotations, tiny_set.test_images, check_files=True)
    coco_val = load_annotations(coco.annotations("val2017"), coco.images("val2017"), check_files=True)
    examples = _pick_examples(test, crops)
    if not any(_kind(a) == "regular" for a in examples):
        raise ValueError(f"{tiny_set.test_annotations}: no regular person box outside dense images to show")
    columns = 6
    rows = -(-len(examples) // columns)
    figure = plt.figure(figsize=(12, 2.1 * rows + 4.2), dpi=110)
    grid = figure.add_gridspec(rows + 2, columns, height_ratios=[1] * rows + [1.5, 1.5])
    for i, ann in enumerate(examples):
        image = test.image_by_id[ann.image_id]
        pixels = read_rgb_array(tiny_set.test_images / image.file_name)
        crop, offset = _crop(pixels, ann)
        axis = figure.add_subplot(grid[i // columns, i % columns])
        axis.imshow(crop, interpolation="nearest")
        _draw_boxes(axis, test.annotations_by_image[image.id], offset)
        axis.set_xlim(-0.5, CROP - 0.5)
        axis.set_ylim(CROP - 0.5, -0.5)
        axis.set_title(f"{_kind(ann)} √(wh)={np.sqrt(ann.bbox[2] * ann.bbox[3]):.1f}px", fontsize=7)
        axis.axis("off")
    frame = max(test.images, key=lambda im: sum(_kind(a) == "regular" for a in test.annotations_by_image[im.id])
                if not any(a.in_dense_image for a in test.annotations_by_image[im.id]) else -1)
    axis = figure.add_subplot(grid[rows:, :4])
    axis.imshow(read_rgb_array(tiny_set.test_images / frame.file_name))
    _draw_boxes(axis, test.annotations_by_image[frame.id], linewidth=0.4)
    axis.set_title(f"a whole {frame.width}×{frame.height} test frame ({frame.file_name})", fontsize=8)
    axis.axis("off")
    names = {c["id"]: c["name"] for c in coco_val.categories}
    for slot, image in zip((grid[rows, 4:], grid[rows + 1, 4:]), coco_val.images[:2]):
        axis = figure.add_subplot(slot)
        axis.imshow(read_rgb_array(coco.images("val2017") / image.file_name))
        _draw_boxes(axis, coco_val.annotations_by_image[image.id], labels=names)
        axis.set_title(f"COCO-like {image.width}×{image.height}", fontsize=8)
        axis.axis("off")
    figure.suptitle("tinysm synthetic data: green regular, red ignore, orange uncertain, magenta logo", fontsize=9)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
    return Path(path)
