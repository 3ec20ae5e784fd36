"""COCO-format annotations with the TinyPerson flags (reference §1.2), typed and validated.

`load_annotations` reads a JSON file into `CocoAnnotations`; `save_annotations` writes it back.
The round trip is lossless: every key a user's file had is written back with its value
(unknown keys travel in `extra`), and optional keys the file did not have are not invented.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from tinysm.io import atomic_write_text, parse_json

# Flags of reference §1.2; all default to False when a file lacks them (plain COCO files do).
FLAG_KEYS = ("iscrowd", "ignore", "uncertain", "logo", "in_dense_image")
_IMAGE_REQUIRED = ("id", "file_name", "width", "height")
_ANNOTATION_REQUIRED = ("id", "image_id", "category_id", "bbox")
_TOP_LEVEL_TYPED = ("images", "annotations", "categories")

PERSON_CATEGORY = {"id": 1, "name": "person"}


class AnnotationError(ValueError):
    """Bad annotation input: names the file, the entry and the problem."""

    def __init__(self, source: str | os.PathLike | None, entry: str, problem: str):
        self.source = str(source) if source is not None else "<in memory>"
        self.entry = entry
        self.problem = problem
        super().__init__(f"{self.source}: {entry}: {problem}")


@dataclass(slots=True)
class ImageRecord:
    """One image entry; `corner` (x1, y1, x2, y2) marks a tile of the full image `file_name`."""

    id: int
    file_name: str
    width: int
    height: int
    corner: tuple[int, int, int, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def region(self) -> tuple[int, int, int, int]:
        """The pixels this entry covers in its image file: the tile corner or the whole image."""
        return self.corner if self.corner is not None else (0, 0, self.width, self.height)

    def to_json(self) -> dict[str, Any]:
        out = {"id": self.id, "file_name": self.file_name, "width": self.width, "height": self.height}
        if self.corner is not None:
            out["corner"] = list(self.corner)
        out.update(self.extra)
        return out


@dataclass(slots=True)
class BoxAnnotation:
    """One box. `bbox` is COCO [x, y, w, h] as written in the file (ints stay ints)."""

    id: int
    image_id: int
    category_id: int
    bbox: tuple[float, float, float, float]
    area: float
    iscrowd: bool = False
    ignore: bool = False
    uncertain: bool = False
    logo: bool = False
    in_dense_image: bool = False
    # Optional keys that were in the file (written back even when default), and the flags the
    # file wrote as 0/1 rather than booleans (COCO's iscrowd): the round trip keeps both.
    present: frozenset[str] = frozenset()
    int_flags: frozenset[str] = frozenset()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_ignored(self) -> bool:
        """Evaluation treats crowd, ignore and uncertain boxes as ignore regions (reference §6.1)."""
        return self.iscrowd or self.ignore or self.uncertain

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "image_id": self.image_id, "category_id": self.category_id,
            "bbox": list(self.bbox),
        }
        if "area" in self.present:
            out["area"] = self.area
        for key in FLAG_KEYS:
            value = getattr(self, key)
            if key in self.present or value:
                out[key] = int(value) if key in self.int_flags else bool(value)
        out.update(self.extra)
        return out


@dataclass
class CocoAnnotations:
    """A whole annotation file. `source` and `image_root` say where it came from."""

    images: list[ImageRecord]
    annotations: list[BoxAnnotation]
    categories: list[dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None
    image_root: Path | None = None
    write_categories: bool = True  # False when the loaded file had no "categories" key

    @cached_property
    def image_by_id(self) -> dict[int, ImageRecord]:
        return {image.id: image for image in self.images}

    @cached_property
    def annotations_by_image(self) -> dict[int, list[BoxAnnotation]]:
        grouped: dict[int, list[BoxAnnotation]] = {image.id: [] for image in self.images}
        for ann in self.annotations:
            grouped[ann.image_id].append(ann)
        return grouped

    def columns(self) -> dict[str, np.ndarray]:
        """The annotations as numpy columns: ids, image_id, category_id, bbox (N×4 float64), area, flags."""
        n = len(self.annotations)
        cols: dict[str, np.ndarray] = {
            "id": np.fromiter((a.id for a in self.annotations), np.int64, n),
            "image_id": np.fromiter((a.image_id for a in self.annotations), np.int64, n),
            "category_id": np.fromiter((a.category_id for a in self.annotations), np.int64, n),
            "bbox": np.array([a.bbox for a in self.annotations], dtype=np.float64).reshape(n, 4),
            "area": np.fromiter((a.area for a in self.annotations), np.float64, n),
        }
        for key in FLAG_KEYS:
            cols[key] = np.fromiter((getattr(a, key) for a in self.annotations), bool, n)
        return cols

    def with_annotations(self, annotations: Iterable[BoxAnnotation],
                         images: Iterable[ImageRecord] | None = None) -> "CocoAnnotations":
        """A copy with other annotations (and optionally images); the rest is shared."""
        return CocoAnnotations(
            images=list(self.images if images is None else images), annotations=list(annotations),
            categories=[dict(c) for c in self.categories], extra=dict(self.extra),
            source=self.source, image_root=self.image_root, write_categories=self.write_categories,
        )

    def to_json(self) -> dict[str, Any]:
        out = dict(self.extra)
        out["images"] = [image.to_json() for image in self.images]
        out["annotations"] = [ann.to_json() for ann in self.annotations]
        if self.write_categories or self.categories:
            out["categories"] = self.categories
        return out


# ----------------------------------------------------------------------------- loading

def load_annotations(path: str | os.PathLike | Mapping[str, Any], image_root: str | os.PathLike | None = None,
                     check_files: bool = False, allow_degenerate_boxes: bool = False) -> CocoAnnotations:
    """Load and validate a COCO/TinyPerson annotation file (or an already parsed dict).

    `image_root` is the folder `file_name` is relative to; it is checked that no `file_name`
    leaves it, and with `check_files=True` that every image file exists. A box of width or height
    ≤ 0 is an error unless `allow_degenerate_boxes`: training reads files the way the reference
    does, keeping such boxes for its filter to drop (reference §7.1).
    """
    if isinstance(path, Mapping):
        source, raw = None, path
    else:
        source = Path(path)
        raw = _read_json(source)
    if not isinstance(raw, Mapping):
        raise AnnotationError(source, "top level", f"expected a JSON object, got {type(raw).__name__}")
    for key in ("images", "annotations"):
        if key not in raw:
            raise AnnotationError(source, "top level", f"missing required key '{key}'")
        if not isinstance(raw[key], list):
            raise AnnotationError(source, "top level", f"'{key}' must be a list")
    categories = raw.get("categories", [])
    images = _parse_entries("image", raw["images"], _parse_image, source)
    _check_unique((im.id for im in images), "image", source)
    image_ids = {im.id for im in images}
    annotations = _parse_entries("annotation", raw["annotations"], _parse_annotation, source, image_ids,
                                 allow_degenerate_boxes)
    _check_unique((a.id for a in annotations), "annotation", source)
    extra = {k: v for k, v in raw.items() if k not in _TOP_LEVEL_TYPED}
    root = Path(image_root) if image_root is not None else None
    if root is not None:
        _check_image_files(images, root, source, check_files)
    return CocoAnnotations(images, annotations, list(categories), extra, source, root,
                           write_categories="categories" in raw)


def _read_json(path: Path) -> Any:
    try:
        return parse_json(path.read_bytes())
    except FileNotFoundError:
        raise AnnotationError(path, "file", "does not exist") from None
    except json.JSONDecodeError as err:
        raise AnnotationError(path, "file", f"malformed JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    except UnicodeDecodeError as err:
        raise AnnotationError(path, "file", f"not UTF-8 text ({err.reason})") from None


class _EntryProblem(Exception):
    """What is wrong with one entry; `_parse_entries` adds the file and the entry's name."""


def _parse_entries(kind: str, entries: list[Any], parse: Any, source: Path | None, *context: Any) -> list[Any]:
    parsed = []
    for index, entry in enumerate(entries):
        try:
            parsed.append(parse(entry, *context))
        except _EntryProblem as problem:
            # The entry's name is built only on failure: loading 860k COCO boxes stays fast.
            name = f"{kind} id {entry['id']!r} (index {index})" if isinstance(entry, Mapping) and "id" in entry \
                else f"{kind} at index {index}"
            raise AnnotationError(source, name, str(problem)) from None
    return parsed


def _require(entry: Any, keys: tuple[str, ...]) -> None:
    if not isinstance(entry, dict):
        raise _EntryProblem(f"expected an object, got {type(entry).__name__}")
    for key in keys:
        if key not in entry:
            raise _EntryProblem(f"missing required key '{key}'")


def _as_int(value: Any, key: str) -> int:
    if type(value) is int:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise _EntryProblem(f"'{key}' must be an integer, got {value!r}")
    return int(value)


def _parse_image(entry: Any) -> ImageRecord:
    _require(entry, _IMAGE_REQUIRED)
    width, height = _as_int(entry["width"], "width"), _as_int(entry["height"], "height")
    if width <= 0 or height <= 0:
        raise _EntryProblem(f"width and height must be positive, got {width}×{height}")
    if not isinstance(entry["file_name"], str) or not entry["file_name"]:
        raise _EntryProblem(f"'file_name' must be a non-empty string, got {entry['file_name']!r}")
    corner = None
    if entry.get("corner") is not None:
        c = entry["corner"]
        if not (isinstance(c, (list, tuple)) and len(c) == 4):
            raise _EntryProblem(f"'corner' must be [x1, y1, x2, y2], got {c!r}")
        corner = tuple(_as_int(v, "corner") for v in c)
        if not (corner[0] < corner[2] and corner[1] < corner[3]):
            raise _EntryProblem(f"'corner' must have x1 < x2 and y1 < y2, got {list(corner)}")
    extra = {k: v for k, v in entry.items() if k not in _IMAGE_REQUIRED and k != "corner"}
    return ImageRecord(_as_int(entry["id"], "id"), entry["file_name"], width, height, corner, extra)


_OPTIONAL_ANNOTATION_KEYS = frozenset(("area", *FLAG_KEYS))
_TYPED_ANNOTATION_KEYS = _OPTIONAL_ANNOTATION_KEYS | set(_ANNOTATION_REQUIRED)
_KEY_SETS: dict[frozenset[str], frozenset[str]] = {}  # one shared frozenset per distinct key set
_NUMBER = (int, float)  # exact types: a bool is no coordinate


def _shared(keys: frozenset[str]) -> frozenset[str]:
    return _KEY_SETS.setdefault(keys, keys)


def _parse_bbox(bbox: Any, allow_degenerate: bool = False) -> tuple[float, float, float, float]:
    if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4):
        raise _EntryProblem(f"'bbox' must be four numbers [x, y, w, h], got {bbox!r}")
    x, y, w, h = bbox
    if not (type(x) in _NUMBER and type(y) in _NUMBER and type(w) in _NUMBER and type(h) in _NUMBER):
        raise _EntryProblem(f"'bbox' must be four numbers [x, y, w, h], got {bbox!r}")
    if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(w) and math.isfinite(h)):
        raise _EntryProblem(f"'bbox' has a non-finite value: {list(bbox)}")
    if (w <= 0 or h <= 0) and not allow_degenerate:
        raise _EntryProblem(f"'bbox' width and height must be > 0, got w={w} h={h}")
    return x, y, w, h


def _parse_flag(value: Any, key: str) -> bool:
    if type(value) is bool:
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    raise _EntryProblem(f"flag '{key}' must be a boolean or 0/1, got {value!r}")


def _parse_annotation(entry: Any, image_ids: set[int], allow_degenerate: bool = False) -> BoxAnnotation:
    _require(entry, _ANNOTATION_REQUIRED)
    bbox = _parse_bbox(entry["bbox"], allow_degenerate)
    image_id = _as_int(entry["image_id"], "image_id")
    if image_id not in image_ids:
        raise _EntryProblem(f"image_id {image_id} is not the id of any image")
    area = entry.get("area", bbox[2] * bbox[3])
    if type(area) not in (int, float) or not math.isfinite(area):
        raise _EntryProblem(f"'area' must be a finite number, got {area!r}")
    present = _shared(frozenset(entry.keys() & _OPTIONAL_ANNOTATION_KEYS))
    flags = {key: _parse_flag(entry[key], key) for key in present if key != "area"}
    int_flags = _shared(frozenset(key for key in flags if type(entry[key]) is int))
    extra = {k: v for k, v in entry.items() if k not in _TYPED_ANNOTATION_KEYS}
    return BoxAnnotation(_as_int(entry["id"], "id"), image_id, _as_int(entry["category_id"], "category_id"),
                         bbox, area, present=present, int_flags=int_flags, extra=extra, **flags)


def _check_unique(ids: Iterable[int], kind: str, source: Path | None) -> None:
    seen: set[int] = set()
    for value in ids:
        if value in seen:
            raise AnnotationError(source, f"{kind} id {value}", f"duplicate {kind} id")
        seen.add(value)


def _check_image_files(images: list[ImageRecord], root: Path, source: Path | None, check_files: bool) -> None:
    root_text = os.path.normpath(os.path.abspath(root))
    for image in images:
        full = os.path.normpath(os.path.join(root_text, image.file_name))
        if os.path.isabs(image.file_name) or os.path.commonpath([root_text, full]) != root_text:
            raise AnnotationError(source, f"image id {image.id}",
                                  f"file_name {image.file_name!r} resolves outside the image root {root}")
        if check_files and not os.path.isfile(full):
            raise AnnotationError(source, f"image id {image.id}", f"image file {full} does not exist")


# ----------------------------------------------------------------------------- saving

def save_annotations(annotations: CocoAnnotations, path: str | os.PathLike) -> Path:
    """Write COCO JSON atomically (temp file + rename): an interrupted write leaves no half file."""
    return atomic_write_text(path, json.dumps(annotations.to_json()))


# ----------------------------------------------------------------------------- tasks and filters

def to_all_task(annotations: CocoAnnotations) -> CocoAnnotations:
    """The "all" task of reference §1.2: sea_person and earth_person merged into one class `person` (id 1)."""
    merged = annotations.with_annotations(replace(a, category_id=PERSON_CATEGORY["id"])
                                          for a in annotations.annotations)
    merged.categories = [dict(PERSON_CATEGORY)]
    return merged


def dense_image_ids(annotations: CocoAnnotations, max_boxes: int | None = 200) -> set[int]:
    """Images flagged `in_dense_image`, or with more than `max_boxes` boxes (reference §1.2)."""
    dense = {a.image_id for a in annotations.annotations if a.in_dense_image}
    if max_boxes is not None:
        dense |= {i for i, anns in annotations.annotations_by_image.items() if len(anns) > max_boxes}
    return dense


def drop_dense_images(annotations: CocoAnnotations, max_boxes: int | None = 200) -> CocoAnnotations:
    """Remove dense images and their boxes (they are excluded from training and evaluation)."""
    dense = dense_image_ids(annotations, max_boxes)
    return annotations.with_annotations(
        (a for a in annotations.annotations if a.image_id not in dense),
        (im for im in annotations.images if im.id not in dense))


def drop_ignored_boxes(annotations: CocoAnnotations) -> CocoAnnotations:
    """Remove ignore and uncertain boxes (as in the "erase" training files, reference §1.2)."""
    return annotations.with_annotations(a for a in annotations.annotations if not (a.ignore or a.uncertain))


def split_crowd(annotations: CocoAnnotations) -> tuple[CocoAnnotations, CocoAnnotations]:
    """(non-crowd, crowd) annotation sets over the same images."""
    return (annotations.with_annotations(a for a in annotations.annotations if not a.iscrowd),
            annotations.with_annotations(a for a in annotations.annotations if a.iscrowd))
