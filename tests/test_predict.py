"""Tiled full-image inference (reference §2.1 grid, §2.3 merge) feeding `evaluate_tiny`."""
from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from scipy import ndimage
from torch import nn

from tinysm.data.annotations import load_annotations
from tinysm.data.datasets import DetectionDataset
from tinysm.data.tiles import cut_tiles
from tinysm.engine.predict import predict
from tinysm.evaluation import evaluate_tiny

from model_support import one_thread, small_detector  # noqa: F401 (one_thread: autouse fixture)


class BlobFinder(nn.Module):
    """Stand-in detector: each bright blob of a tile that does not touch the tile's border is a
    person (a real detector also misses what a tile cuts). Records the tile batches it saw."""

    def __init__(self, merge_variant: str):
        super().__init__()
        self.merge_variant = merge_variant
        self.weight = nn.Parameter(torch.zeros(1))  # gives predict a device to read
        self.batch_shapes: list[list[tuple[int, ...]]] = []

    def tile_detections(self, images):
        self.batch_shapes.append([tuple(image.shape) for image in images])
        detections = []
        for image in images:
            assert image.dtype == torch.float32 and float(image.max()) <= 1.0
            blobs, _ = ndimage.label(image[0].numpy() > 0.5)
            height, width = image.shape[-2:]
            boxes = [[cols.start, rows.start, cols.stop, rows.stop] for rows, cols in ndimage.find_objects(blobs)
                     if rows.start > 0 and cols.start > 0 and rows.stop < height and cols.stop < width]
            boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
            detections.append({"boxes": boxes, "scores": torch.full((len(boxes),), 0.75),
                               "labels": torch.ones(len(boxes), dtype=torch.int64)})
        return detections


def write_png(pixels: torch.Tensor, path) -> None:
    """Lossless, so the blob finder sees exactly the painted persons."""
    Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(path)


def crowd_image(width: int, height: int, columns: int, rows: int) -> tuple[torch.Tensor, list[list[float]]]:
    """A black frame with columns×rows white persons of 4–7 px; their COCO [x, y, w, h] boxes."""
    pixels = torch.zeros(3, height, width, dtype=torch.uint8)
    boxes = []
    for row in range(rows):
        for column in range(columns):
            x, y = 20 + column * (width - 40) // columns, 20 + row * (height - 40) // rows
            w, h = 4 + (row + column) % 4, 7 - (row * column) % 4
            pixels[:, y:y + h, x:x + w] = 255
            boxes.append([float(x), float(y), float(w), float(h)])
    return pixels, boxes


@pytest.mark.parametrize("variant", ["two_stage", "one_stage"])
def test_crowded_full_hd_frame_gives_every_person_once(variant):
    pixels, boxes = crowd_image(1920, 1080, columns=25, rows=16)  # 400 persons, above caps of 100/300
    small, small_boxes = crowd_image(1280, 720, columns=5, rows=3)
    detector = BlobFinder(variant)
    results = predict(detector, [(pixels, {"image_id": 7}), (small, {"image_id": 3})], batch_size=5, progress=False)
    # reference §2.1: 12 tiles of 640×512 for 1920×1080 and 6 for 1280×720, batched across the two images.
    assert [len(b) for b in detector.batch_shapes] == [5, 5, 5, 3]
    assert {shape for batch in detector.batch_shapes for shape in batch} == {(3, 512, 640)}
    by_image = {image_id: sorted(r["bbox"] for r in results if r["image_id"] == image_id) for image_id in (7, 3)}
    assert by_image[7] == sorted(boxes) and len(by_image[7]) == 400
    assert by_image[3] == sorted(small_boxes)
    assert {(r["category_id"], r["score"]) for r in results} == {(1, 0.75)}


def test_results_file_is_what_evaluate_tiny_takes(tmp_path):
    pixels, boxes = crowd_image(700, 560, columns=6, rows=4)
    write_png(pixels, tmp_path / "frame.png")
    gt = {"images": [{"id": 0, "file_name": "frame.png", "width": 700, "height": 560}],
          "annotations": [{"id": i, "image_id": 0, "category_id": 1, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
                          for i, b in enumerate(boxes)],
          "categories": [{"id": 1, "name": "person"}]}
    annotations = load_annotations(gt, image_root=tmp_path)
    out = tmp_path / "runs" / "results.json"
    results = predict(BlobFinder("two_stage"), DetectionDataset(annotations), results_path=out, progress=False)
    assert json.loads(out.read_text()) == results
    metrics = evaluate_tiny(annotations, out).metrics
    assert metrics["AP50_tiny"] == pytest.approx(100.0) and metrics["MR50_tiny"] == pytest.approx(0.0)


def test_real_detectors_return_valid_boxes_inside_the_image():
    image = torch.rand(3, 150, 200)
    for name in ("faster_fpn", "adaptive_retinanet"):
        model = small_detector(name).train()
        if name == "adaptive_retinanet":  # untrained scores sit at the 0.01 prior, below the 0.05 threshold
            nn.init.zeros_(model.head.classification_head.cls_logits.bias)
        results = predict(model, [(image, {"image_id": 5})], tile=(128, 96), overlap=(32, 32), batch_size=3,
                          progress=False)
        assert model.training  # predict restores the mode it found
        assert len(results) > 0 and {r["image_id"] for r in results} == {5}
        boxes = torch.tensor([r["bbox"] for r in results])
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] >= 0).all()
        assert (boxes[:, 0] + boxes[:, 2] <= 200 + 1e-3).all() and (boxes[:, 1] + boxes[:, 3] <= 150 + 1e-3).all()
        scores = [r["score"] for r in results]
        assert scores == sorted(scores, reverse=True)
        if name == "adaptive_retinanet":  # thousands of pooled candidates, the one-stage cap (reference §2.3)
            assert len(results) == 1000


def test_tiles_and_bad_arguments_are_refused(tmp_path):
    pixels, boxes = crowd_image(700, 560, columns=2, rows=2)
    write_png(pixels, tmp_path / "frame.png")
    gt = {"images": [{"id": 0, "file_name": "frame.png", "width": 700, "height": 560}],
          "annotations": [{"id": i, "image_id": 0, "category_id": 1, "bbox": b} for i, b in enumerate(boxes)],
          "categories": [{"id": 1, "name": "person"}]}
    tiles = cut_tiles(load_annotations(gt, image_root=tmp_path), keep_empty=True)
    with pytest.raises(ValueError, match=r"image id 0 \(and \d+ more\): is a tile .*predict works on full images"):
        predict(BlobFinder("two_stage"), DetectionDataset(tiles, image_root=tmp_path), progress=False)
    with pytest.raises(ValueError, match="appears twice"):
        predict(BlobFinder("two_stage"), [(pixels, {"image_id": 1}), (pixels, {"image_id": 1})], progress=False)
    with pytest.raises(ValueError, match="merge_variant is one of .* got BlobFinder with 'three_stage'"):
        predict(BlobFinder("three_stage"), [(pixels, {"image_id": 1})], progress=False)
    with pytest.raises(ValueError, match="needs a tinysm.models detector .* got Linear with None"):
        predict(nn.Linear(2, 2), [(pixels, {"image_id": 1})], progress=False)
    with pytest.raises(ValueError, match="amp=True runs fp16 autocast on CUDA"):
        predict(BlobFinder("one_stage"), [(pixels, {"image_id": 1})], amp=True, device="cpu", progress=False)
