"""torch Datasets over annotation sets: full images or tiles read straight from the full image.

A tile entry (an image with `corner`, reference §2) is cropped from its full image file on the fly:
no sub-image files are written. Targets speak COCO category ids; label offsets live in the models.

Every image is checked against its entry when it is read (issue 12): its size is the entry's width
and height (a tile's corner lies inside it), and a file that is missing, corrupt, truncated or of
unusable pixels stops with one `ImageFileError` naming the image file, the annotation file and
the image id, even when a DataLoader worker read it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from tinysm.data.annotations import AnnotationError, CocoAnnotations, ImageRecord
from tinysm.data.images import ImageReadError, open_checked, read_rgb, size_problem

Target = dict[str, Any]
Transform = Callable[[torch.Tensor, Target], tuple[torch.Tensor, Target]]


class ImageFileError(AnnotationError):
    """An image file that does not fit its annotation entry: names the annotation file, the image id
    and the image file with the problem.

    torch's DataLoader re-raises a worker's exception as `type(error)(message)`, the message being
    the worker's whole traceback; built from that one argument, this error keeps only its own line,
    so the command line still prints one line (and the class survives pickling the same way).
    """

    def __init__(self, source: Any, entry: str | None = None, problem: str | None = None):
        if entry is None and problem is None:
            message = _own_line(str(source), type(self))
            ValueError.__init__(self, message)
            self.source, self.entry, self.problem = "", "", message
            return
        super().__init__(source, entry, problem)


def _own_line(message: str, cls: type) -> str:
    """The message of the last line "...<cls name>: message" of a formatted traceback, or `message`."""
    marker = f"{cls.__name__}: "
    lines = [line for line in message.splitlines() if marker in line and not line.startswith(" ")]
    return lines[-1].split(marker, 1)[1] if lines else message


def expected_extent(record: ImageRecord) -> tuple[tuple[int, int] | None, tuple[int, int, int, int] | None]:
    """(size, holds) for `read_rgb`: a full image is exactly its entry's width×height; a tile entry
    has the tile's width and height, so its file need only hold the corner."""
    return (None, record.corner) if record.corner is not None else ((record.width, record.height), None)


def read_image(record: ImageRecord, image_root: Path, source: Any) -> torch.Tensor:
    """The whole image file of `record` as uint8 3×H×W, checked against the record
    (`expected_extent`); a problem raises `ImageFileError`."""
    try:
        return read_rgb(image_root / record.file_name, *expected_extent(record))
    except ImageReadError as err:
        raise ImageFileError(source, f"image id {record.id}", str(err)) from None


def check_image_headers(records: Iterable[ImageRecord], image_root: Path, source: Any) -> None:
    """Open every image file of `records` (its header only) and check it as `read_image` would:
    a command that writes one output per image fails on a bad file before it writes any."""
    for record in records:
        try:
            open_checked(image_root / record.file_name, *expected_extent(record)).close()
        except ImageReadError as err:
            raise ImageFileError(source, f"image id {record.id}", str(err)) from None


class DetectionDataset(Dataset):
    """(image, target) pairs: `image` a uint8 3×H×W `tv_tensors.Image`, `target` a dict with
    `boxes` (xyxy `BoundingBoxes`), `labels` (COCO category ids), `ignore` (crowd/ignore/uncertain),
    `image_id`.

    `drop_ignored=True` removes ignore-flagged boxes from the target (training, reference §1.2);
    `transforms` take and return (image, target).
    """

    def __init__(self, annotations: CocoAnnotations, image_root: str | Path | None = None,
                 transforms: Transform | None = None, drop_ignored: bool = False):
        root = image_root if image_root is not None else annotations.image_root
        if root is None:
            raise ValueError(f"{annotations.source}: no image_root given for the images of this file")
        self.annotations = annotations
        self.image_root = Path(root)
        self.transforms = transforms
        self.drop_ignored = drop_ignored
        self._cached: tuple[str, torch.Tensor] | None = None  # consecutive tiles share one decode

    def __len__(self) -> int:
        return len(self.annotations.images)

    def read_pixels(self, index: int) -> torch.Tensor:
        """The uint8 3×H×W pixels of entry `index` (its tile when it has a corner)."""
        record = self.annotations.images[index]
        if self._cached is None or self._cached[0] != record.file_name:
            self._cached = (record.file_name, read_image(record, self.image_root, self.annotations.source))
        else:  # another tile of the decoded file: its corner must still lie inside it
            height, width = self._cached[1].shape[-2:]
            problem = size_problem((width, height), *expected_extent(record))
            if problem:
                raise ImageFileError(self.annotations.source, f"image id {record.id}",
                                     str(ImageReadError(self.image_root / record.file_name, problem)))
        x1, y1, x2, y2 = record.region
        return self._cached[1][:, y1:y2, x1:x2]

    def target(self, index: int) -> Target:
        record = self.annotations.images[index]
        anns = self.annotations.annotations_by_image[record.id]
        if self.drop_ignored:
            anns = [a for a in anns if not a.is_ignored]
        boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a.bbox for a in anns)],
                             dtype=torch.float32).reshape(-1, 4)
        height, width = record.region[3] - record.region[1], record.region[2] - record.region[0]
        return {
            "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(height, width)),
            "labels": torch.tensor([a.category_id for a in anns], dtype=torch.int64),
            "ignore": torch.tensor([a.is_ignored for a in anns], dtype=torch.bool),
            "image_id": record.id,
        }

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Target]:
        image = tv_tensors.Image(self.read_pixels(index).clone())
        target = self.target(index)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target


def collate_detection(batch: list[tuple[torch.Tensor, Target]]) -> tuple[list[torch.Tensor], list[Target]]:
    """Variable-size images stay a list (torchvision's detection models pad them)."""
    images, targets = zip(*batch)
    return list(images), list(targets)
