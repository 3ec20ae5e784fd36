"""Painting ignore/uncertain regions with their mean colour: the "erase" images of reference §1.2.

Training never sees ignore handling; it trains on images where those regions are flat colour and
on annotation files without them. `EraseIgnoredRegions` does this on the fly; `write_erased_dataset`
writes erased copies the way the official release ships them.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torchvision import tv_tensors
from tqdm import tqdm

from tinysm.data.annotations import CocoAnnotations, drop_ignored_boxes, save_annotations
from tinysm.data.datasets import check_image_headers, read_image
from tinysm.data.images import write_jpeg
from tinysm.data.tiles import require_full_images
from tinysm.io import refuse_input_as_output


def region_pixels(box_xyxy: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    """The whole pixels a float box touches: [floor(x1), ceil(x2)) × [floor(y1), ceil(y2)), clipped."""
    x1, y1, x2, y2 = box_xyxy
    return (max(0, math.floor(x1)), max(0, math.floor(y1)), min(width, math.ceil(x2)), min(height, math.ceil(y2)))


def erase_regions(image: torch.Tensor, boxes_xyxy: torch.Tensor) -> torch.Tensor:
    """A copy of the C×H×W `image` with every box filled by that region's per-channel mean colour."""
    out = image.clone()
    height, width = image.shape[-2:]
    for box in boxes_xyxy.tolist():
        x1, y1, x2, y2 = region_pixels(box, width, height)
        if x2 <= x1 or y2 <= y1:
            continue
        region = out[:, y1:y2, x1:x2]
        mean = region.double().mean(dim=(1, 2)).round().to(image.dtype)
        region[:] = mean[:, None, None]
    return out


class EraseIgnoredRegions:
    """Transform on (image, target): erase the boxes flagged in target["ignore"] and drop them."""

    def __call__(self, image: torch.Tensor, target: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        ignore = target["ignore"]
        if not bool(ignore.any()):
            return image, target
        boxes = target["boxes"]
        erased = erase_regions(image, boxes[ignore])
        if isinstance(image, tv_tensors.TVTensor):
            erased = tv_tensors.wrap(erased, like=image)
        keep = ~ignore
        # Indexing unwraps tv_tensors; re-wrap so later v2 transforms still see BoundingBoxes.
        kept_boxes = tv_tensors.wrap(boxes[keep], like=boxes) if isinstance(boxes, tv_tensors.TVTensor) else boxes[keep]
        target = {**target, "boxes": kept_boxes, "labels": target["labels"][keep], "ignore": ignore[keep]}
        return erased, target


def refuse_erasing_inputs(annotations: CocoAnnotations, image_root: Path, out_root: Path,
                          out_annotations: str | Path | None) -> None:
    """Raise FileExistsError when an output would land on an input: an erased copy on its own
    original (the same folder, or one reaching it through a symbolic link), or the annotation output
    on the annotation file read."""
    if out_annotations is not None:
        refuse_input_as_output(out_annotations, {"input annotation file": annotations.source})
    for image in annotations.images:
        refuse_input_as_output(out_root / image.file_name, {f"original image of image id {image.id}":
                                                            image_root / image.file_name})


def write_erased_dataset(annotations: CocoAnnotations, image_root: str | Path, out_root: str | Path,
                         out_annotations: str | Path | None = None, quality: int = 95) -> CocoAnnotations:
    """Write erased copies of every image under `out_root` (same relative file names) and return
    (and optionally save) the annotations without ignore/uncertain boxes; never over an input.

    Before anything is written: a tile file is refused (its boxes are in tile coordinates, and every
    tile would rewrite its whole frame), and every image file's header is checked against its entry
    (size, readable, usable pixels); a file truncated past its header stops the loop when decoded.
    """
    image_root, out_root = Path(image_root), Path(out_root)
    require_full_images(annotations, "erase")
    refuse_erasing_inputs(annotations, image_root, out_root, out_annotations)  # before anything is written
    check_image_headers(annotations.images, image_root, annotations.source)
    for image in tqdm(annotations.images, desc="erase", unit="img"):
        boxes = [a.bbox for a in annotations.annotations_by_image[image.id] if a.ignore or a.uncertain]
        pixels = read_image(image, image_root, annotations.source)
        if boxes:
            xyxy = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in boxes], dtype=torch.float64)
            pixels = erase_regions(pixels, xyxy)
        write_jpeg(pixels, out_root / image.file_name, quality)
    erased = drop_ignored_boxes(annotations)
    if out_annotations is not None:
        save_annotations(erased, out_annotations)
    return erased
