"""Tile datasets read from full images, and the erase transform / command (reference §1.2, §2)."""
from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from tinysm.cli import main
from tinysm.data.annotations import load_annotations
from tinysm.data.datasets import DetectionDataset, collate_detection
from tinysm.data.erase import EraseIgnoredRegions, erase_regions, region_pixels
from tinysm.data.tiles import cut_tiles


def write_dataset(tmp_path):
    """One 200x100 PNG (lossless, so pixel values are exact) with a gradient and two boxes."""
    root = tmp_path / "train"
    (root / "labeled_images").mkdir(parents=True)
    pixels = np.zeros((100, 200, 3), dtype=np.uint8)
    pixels[..., 0] = np.arange(200, dtype=np.uint8)[None, :]
    pixels[..., 1] = np.arange(100, dtype=np.uint8)[:, None]
    Image.fromarray(pixels).save(root / "labeled_images" / "a.png")
    payload = {
        "images": [{"id": 0, "file_name": "labeled_images/a.png", "width": 200, "height": 100}],
        "annotations": [
            {"id": 0, "image_id": 0, "category_id": 1, "bbox": [110.0, 10.0, 20.0, 30.0]},
            {"id": 1, "image_id": 0, "category_id": 1, "bbox": [10.0, 50.0, 4.0, 6.0], "uncertain": True},
        ],
        "categories": [{"id": 1, "name": "person"}],
    }
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(payload))
    return path, root, pixels


def test_tile_is_cropped_from_the_full_image(tmp_path):
    path, root, pixels = write_dataset(tmp_path)
    tiles = cut_tiles(load_annotations(path, image_root=root), tile=(120, 80), overlap=(20, 20))
    dataset = DetectionDataset(tiles, root)
    for index, record in enumerate(tiles.images):
        image, target = dataset[index]
        x1, y1, x2, y2 = record.corner
        np.testing.assert_array_equal(image.permute(1, 2, 0).numpy(), pixels[y1:y2, x1:x2])
        assert tuple(target["boxes"].canvas_size) == (y2 - y1, x2 - x1)
        expected = [[a.bbox[0], a.bbox[1], a.bbox[0] + a.bbox[2], a.bbox[1] + a.bbox[3]]
                    for a in tiles.annotations_by_image[record.id]]
        assert target["boxes"].tolist() == expected
    images, targets = collate_detection([dataset[0], dataset[1]])
    assert len(images) == 2 and targets[1]["image_id"] == tiles.images[1].id


def test_drop_ignored_removes_uncertain_boxes(tmp_path):
    path, root, _ = write_dataset(tmp_path)
    full = load_annotations(path, image_root=root)
    assert DetectionDataset(full)[0][1]["ignore"].tolist() == [False, True]
    target = DetectionDataset(full, drop_ignored=True)[0][1]
    assert target["boxes"].tolist() == [[110.0, 10.0, 130.0, 40.0]] and target["labels"].tolist() == [1]


def test_erase_fills_region_with_its_mean_colour():
    image = torch.arange(2 * 4 * 6, dtype=torch.uint8).reshape(2, 4, 6)
    out = erase_regions(image, torch.tensor([[1.5, 0.0, 3.0, 2.0]]))   # columns 1..2, rows 0..1
    assert region_pixels((1.5, 0.0, 3.0, 2.0), 6, 4) == (1, 0, 3, 2)
    # channel 0 values 1, 2, 7, 8 -> mean 4.5 -> 4 (round half to even); channel 1: +24 -> 28.5 -> 28
    assert out[0, :2, 1:3].unique().tolist() == [4] and out[1, :2, 1:3].unique().tolist() == [28]
    untouched = torch.ones_like(image, dtype=torch.bool)
    untouched[:, :2, 1:3] = False
    assert torch.equal(out[untouched], image[untouched])


def test_erase_transform_and_command(tmp_path, capsys):
    path, root, pixels = write_dataset(tmp_path)
    image, target = DetectionDataset(load_annotations(path, image_root=root))[0]
    erased, erased_target = EraseIgnoredRegions()(image, target)
    region = erased[:, 50:56, 10:14]
    assert (region == region[:, :1, :1]).all()                        # flat colour
    assert erased_target["ignore"].tolist() == [False] and len(erased_target["boxes"]) == 1
    assert erased_target["boxes"].canvas_size == target["boxes"].canvas_size

    out_root, out_json = tmp_path / "erase" / "train", tmp_path / "erase.json"
    assert main(["erase", str(path), str(root), str(out_root), "--annotations-out", str(out_json)]) == 0
    assert "1 ignore/uncertain boxes erased" in capsys.readouterr().out
    assert [a["id"] for a in json.loads(out_json.read_text())["annotations"]] == [0]
    assert (out_root / "labeled_images" / "a.png").is_file()
    assert main(["erase", str(path), str(root), str(root)]) == 2       # never in place
