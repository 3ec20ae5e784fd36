"""Results files are parsed strictly (issue 12): string or boolean scores and coordinates, boolean
or float ids stop with one line naming the file, the entry's index and the problem; a results file
that covers only part of the ground truth's images is a warning with the counts, shown by the
command line as one line."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from tinysm.cli import main
from tinysm.data.annotations import AnnotationError, load_annotations
from tinysm.evaluation import evaluate_tiny

from test_bad_inputs import fails, files  # noqa: F401 (a fixture)
from test_evaluation_inputs import GT, good
from test_inputs_never_overwritten import fingerprint


@pytest.mark.parametrize("change, problem", [
    ({"score": "0.9"}, "'score' must be a number, got '0.9'"),
    ({"score": True}, "'score' must be a number, got True"),
    ({"bbox": [10, 10, "8", 8]}, "'bbox' must be four numbers [x, y, w, h], got [10, 10, '8', 8]"),
    ({"bbox": "1234"}, "'bbox' must be four numbers [x, y, w, h], got '1234'"),
    ({"bbox": [10, 10, True, 8]}, "'bbox' must be four numbers [x, y, w, h], got [10, 10, True, 8]"),
    ({"image_id": True}, "'image_id' must be an integer, got True"),
    ({"image_id": 7.0}, "'image_id' must be an integer, got 7.0"),
    ({"category_id": True}, "'category_id' must be an integer, got True"),
    ({"category_id": 1.0}, "'category_id' must be an integer, got 1.0"),
], ids=["string score", "boolean score", "string coordinate", "string box", "boolean coordinate",
        "boolean image id", "float image id", "boolean category id", "float category id"])
def test_results_entries_of_the_wrong_type_are_named(files, capsys, change, problem):
    results = files / "results.json"
    results.write_text(json.dumps([good(), good(image_id=7), {**good(), **change}, good()]))
    before = fingerprint(files)
    with pytest.raises(AnnotationError) as info:
        evaluate_tiny(files / "gt.json", results)
    assert str(info.value) == f"{results}: detection at index 2: {problem}"
    fails(["evaluate", str(files / "gt.json"), str(results), "--json", str(files / "metrics.json")], capsys,
          f"{results}: detection at index 2: {problem}")
    assert fingerprint(files) == before  # no metrics written, nothing changed


@pytest.mark.parametrize("column, values", [("score", np.array([True, False])), ("score", np.array(["0.5", "0.7"])),
                                            ("bbox", np.ones((2, 4), bool))])
def test_result_columns_of_booleans_or_strings_are_refused(column, values):
    arrays = {"image_id": np.array([0, 7]), "category_id": np.array([1, 1]),
              "bbox": np.array([[10.0, 10, 8, 8], [50, 50, 20, 20]]), "score": np.array([0.9, 0.5]), column: values}
    with pytest.raises(AnnotationError, match=rf"column '{column}': must hold numbers, got dtype"):
        evaluate_tiny(load_annotations(GT), arrays)


def test_results_of_part_of_the_images_warn_with_the_counts(files, capsys):
    results = files / "results.json"
    results.write_text(json.dumps([good()]))  # image 0 only; image 7 of the ground truth has none
    with pytest.warns(UserWarning, match="cover 1 of the 2 images") as caught:
        evaluate_tiny(files / "gt.json", results)
    message = str(caught[0].message)
    assert message.startswith(f"{results}: detections cover 1 of the 2 images of {files / 'gt.json'}; the other 1 ")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # complete results: no warning at all
        evaluate_tiny(files / "gt.json", [good(), good(image_id=7)])
    before = fingerprint(files)
    assert main(["evaluate", str(files / "gt.json"), str(results)]) == 0
    err = capsys.readouterr().err.strip()
    assert err == f"tinysm evaluate: warning: {message}", err  # one line, not Python's two
    assert fingerprint(files) == before
