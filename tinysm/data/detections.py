"""COCO detection results as numpy columns, validated against the ground truth (issue 4, input checks).

A results file is a JSON list of `{image_id, category_id, bbox: [x, y, w, h], score}`, read strictly
(issue 12): ids are integers (not floats, not booleans), scores and coordinates are ints or floats
(not strings, not booleans). Columns are extracted and their types checked in one C-speed pass per
key; only when that fails is the list walked entry by entry to name the first bad entry (its
index) and the file, so a clean file costs no per-entry Python code.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from tinysm.data.annotations import AnnotationError
from tinysm.io import parse_json

RESULT_KEYS = ("image_id", "category_id", "bbox", "score")


class PartialResultsWarning(UserWarning):
    """Detections that cover only some of the ground truth's images: the others are scored as
    images where nothing was found, which is right for a detector that found nothing there and
    wrong for a results file of another subset or another ground truth."""


@dataclass(frozen=True)
class Detections:
    """N detections: `image_id`, `category_id` (int64), `bbox` (N×4 float64 x, y, w, h), `score` (float64)."""

    image_id: np.ndarray
    category_id: np.ndarray
    bbox: np.ndarray
    score: np.ndarray

    def __len__(self) -> int:
        return len(self.score)

    @property
    def area(self) -> np.ndarray:
        """w·h, the detection area every rule of reference §6 uses."""
        return self.bbox[:, 2] * self.bbox[:, 3]

    def to_results(self) -> list[dict[str, Any]]:
        """The COCO results list (plain Python numbers)."""
        return [{"image_id": int(i), "category_id": int(c), "bbox": [float(v) for v in b], "score": float(s)}
                for i, c, b, s in zip(self.image_id, self.category_id, self.bbox, self.score)]


def load_detections(source: Any, image_ids: Iterable[int], category_ids: Iterable[int] | None = None) -> Detections:
    """Read and validate detections from a path, a list of result dicts, a mapping of arrays or `Detections`.

    Every `image_id` must be one of `image_ids` and every `category_id` one of `category_ids` (when given);
    scores and boxes must be finite with w, h >= 0. Errors name the source and the entry.
    """
    name: str | os.PathLike | None = None
    if isinstance(source, (str, os.PathLike)):
        name = Path(source)
        source = _read_results_file(name)
        if not isinstance(source, list):
            raise AnnotationError(name, "top level", f"a results file must be a JSON list of result objects, "
                                                     f"got {type(source).__name__}")
    if isinstance(source, Detections):
        detections = source
    elif isinstance(source, Mapping):
        detections = _from_arrays(source, name)
    elif isinstance(source, list):
        detections = _from_records(source, name)
    else:
        raise AnnotationError(name, "top level", f"detections must be a list of result objects, got {type(source).__name__}")
    _check_values(detections, name, np.fromiter(image_ids, np.int64),
                  None if category_ids is None else np.fromiter(category_ids, np.int64))
    return detections


def _read_results_file(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AnnotationError(path, "file", "does not exist") from None
    except OSError as err:  # a folder, no permission, an I/O error: the file cannot be what is asked
        raise AnnotationError(path, "file", f"cannot be read ({err.strerror or err})") from None
    try:
        return parse_json(data)
    except json.JSONDecodeError as err:  # orjson's error is a subclass
        raise AnnotationError(path, "file", f"malformed JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    except UnicodeDecodeError as err:
        raise AnnotationError(path, "file", f"not UTF-8 text ({err.reason})") from None


_GET = {key: itemgetter(key) for key in RESULT_KEYS}


def _is_integer_type(kind: type) -> bool:
    """An id is an integer, never a bool (True would silently be image 1) nor a float."""
    return issubclass(kind, (int, np.integer)) and not issubclass(kind, (bool, np.bool_))


def _is_number_type(kind: type) -> bool:
    """A score or coordinate is an int or a float, never a bool or a numeric string."""
    return issubclass(kind, (int, float, np.integer, np.floating)) and not issubclass(kind, (bool, np.bool_))


def _all_of(values: Iterable[Any], accepted: Callable[[type], bool]) -> bool:
    """Whether every value's type is accepted, tested once per distinct type: the walk over the
    values runs in C, so a clean file of a million detections pays tens of milliseconds."""
    return all(map(accepted, set(map(type, values))))


def _from_records(records: list, name: str | os.PathLike | None) -> Detections:
    n = len(records)
    try:
        image_ids, category_ids, boxes, scores = (list(map(_GET[key], records)) for key in RESULT_KEYS)
        well_formed = (_all_of(image_ids, _is_integer_type) and _all_of(category_ids, _is_integer_type)
                       and _all_of(scores, _is_number_type)
                       and all(issubclass(kind, (list, tuple)) for kind in set(map(type, boxes)))
                       and (n == 0 or set(map(len, boxes)) == {4})
                       and _all_of(chain.from_iterable(boxes), _is_number_type))
        if well_formed:
            # fromiter is lax (it would read "0.5" or True), which the type checks above make safe.
            image_id = np.fromiter(image_ids, np.int64, n)
            category_id = np.fromiter(category_ids, np.int64, n)
            score = np.fromiter(scores, np.float64, n)
            bbox = np.fromiter(chain.from_iterable(boxes), np.float64, 4 * n).reshape(n, 4)
    except (KeyError, TypeError, IndexError, OverflowError, ValueError):  # not an object, no such key, a huge id
        well_formed = False
    if not well_formed:
        _raise_first_bad_record(records, name)
        raise AnnotationError(name, "detections", "could not be read as numbers (an id beyond 64 bits?)")
    return Detections(image_id, category_id, bbox, score)


def _raise_first_bad_record(records: list, name: str | os.PathLike | None) -> None:
    """Walk the records and raise AnnotationError for the first one that is malformed, by the rules
    of the fast check in `_from_records`."""
    for index, record in enumerate(records):
        entry = f"detection at index {index}"
        if not isinstance(record, Mapping):
            raise AnnotationError(name, entry, f"expected an object, got {type(record).__name__}")
        for key in RESULT_KEYS:
            if key not in record:
                raise AnnotationError(name, entry, f"missing required key '{key}'")
        for key in ("image_id", "category_id"):
            if not _is_integer_type(type(record[key])):
                raise AnnotationError(name, entry, f"'{key}' must be an integer, got {record[key]!r}")
        bbox = record["bbox"]
        if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4 and all(_is_number_type(type(v)) for v in bbox)):
            raise AnnotationError(name, entry, f"'bbox' must be four numbers [x, y, w, h], got {bbox!r}")
        if not _is_number_type(type(record["score"])):
            raise AnnotationError(name, entry, f"'score' must be a number, got {record['score']!r}")


def _from_arrays(arrays: Mapping[str, Any], name: str | os.PathLike | None) -> Detections:
    missing = [key for key in RESULT_KEYS if key not in arrays]
    if missing:
        raise AnnotationError(name, "arrays", f"missing column(s) {missing}; need {list(RESULT_KEYS)}")
    try:
        image_id, category_id, bbox, score = (np.asarray(arrays[key]) for key in RESULT_KEYS)
    except (TypeError, ValueError) as err:
        raise AnnotationError(name, "arrays", f"columns must be numeric: {err}") from None
    for key, column in (("bbox", bbox), ("score", score)):
        if column.dtype.kind not in "iuf":  # booleans and strings are no coordinates or scores
            raise AnnotationError(name, f"column '{key}'", f"must hold numbers, got dtype {column.dtype}")
    if score.ndim != 1:
        raise AnnotationError(name, "column 'score'", f"must hold one number per detection, got shape {score.shape}")
    bbox, score = bbox.astype(np.float64, copy=False), score.astype(np.float64, copy=False)
    n = len(score)
    for key, column in (("image_id", image_id), ("category_id", category_id)):
        if column.shape != (n,) or column.dtype.kind not in "iu":
            raise AnnotationError(name, f"column '{key}'", f"must be {n} integers, got shape {column.shape} dtype {column.dtype}")
    if bbox.shape != (n, 4) or score.shape != (n,):
        raise AnnotationError(name, "arrays", f"need bbox of shape ({n}, 4) and score of shape ({n},), "
                                              f"got {bbox.shape} and {score.shape}")
    return Detections(image_id.astype(np.int64), category_id.astype(np.int64), bbox, score)


def _check_values(detections: Detections, name: str | os.PathLike | None,
                  image_ids: np.ndarray, category_ids: np.ndarray | None) -> None:
    def fail(mask: np.ndarray, problem: str) -> None:
        index = int(np.flatnonzero(mask)[0])
        raise AnnotationError(name, f"detection at index {index} (image_id {detections.image_id[index]})",
                              problem.format(bbox=detections.bbox[index].tolist(), score=detections.score[index],
                                             image_id=detections.image_id[index],
                                             category_id=detections.category_id[index]))

    bad = ~np.isfinite(detections.score)
    if bad.any():
        fail(bad, "'score' must be finite, got {score}")
    bad = ~np.isfinite(detections.bbox).all(axis=1)
    if bad.any():
        fail(bad, "'bbox' has a non-finite value: {bbox}")
    bad = (detections.bbox[:, 2:] < 0).any(axis=1)
    if bad.any():
        fail(bad, "'bbox' width and height must be >= 0, got {bbox}")
    bad = ~np.isin(detections.image_id, image_ids)
    if bad.any():
        fail(bad, "image_id {image_id} is not the id of any image in the ground truth")
    bad = np.zeros(len(detections), bool) if category_ids is None else ~np.isin(detections.category_id, category_ids)
    if bad.any():
        fail(bad, "category_id {category_id} is not a category of the ground truth")
