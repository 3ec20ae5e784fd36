"""Images are checked against their annotations when read (issue 12): a size that differs from the
entry's width and height, a tile corner outside its file, a missing, corrupt or truncated file, or
pixels that cannot become 8-bit RGB stop with one line naming the image file, the annotation file
and the image id; never a numpy traceback, silently cropped boxes or a white 16-bit image. `tinysm
erase` applies the same checks, and refuses a tile ("corner") file as prediction does."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from tinysm.cli import main
from tinysm.data.annotations import load_annotations
from tinysm.data.datasets import DetectionDataset
from tinysm.data.tiles import cut_tiles

from test_inputs_never_overwritten import fingerprint


def write_set(tmp_path: Path, pixels: np.ndarray | None = None, width: int = 200, height: int = 100,
              name: str = "a.png", corner: list[int] | None = None) -> tuple[Path, Path]:
    """One image file (a 100×200 RGB gradient unless `pixels`) and a one-entry annotation file that
    says `width`×`height`; returns (annotation file, image root)."""
    root = tmp_path / "images"
    root.mkdir(parents=True, exist_ok=True)
    if pixels is None:
        pixels = np.zeros((100, 200, 3), np.uint8)
        pixels[..., 0] = np.arange(200, dtype=np.uint8)[None, :]
    Image.fromarray(pixels).save(root / name)
    image = {"id": 7, "file_name": name, "width": width, "height": height}
    if corner is not None:
        image["corner"] = corner
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": [image], "categories": [{"id": 1, "name": "person"}], "annotations": [
        {"id": 0, "image_id": 7, "category_id": 1, "bbox": [10, 10, 20, 30], "uncertain": True}]}))
    return path, root


def read_error(path: Path, root: Path) -> str:
    """The message `DetectionDataset` raises reading entry 0 (bad input: a ValueError, as the command
    line expects), checked to name the annotation file, the entry and the image file."""
    with pytest.raises(ValueError) as info:
        DetectionDataset(load_annotations(path), root)[0]
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: image id 7: image file {root / 'a.png'} "), message
    return message


def erase_fails(argv: list[str], capsys: pytest.CaptureFixture[str], *words: str) -> None:
    """`tinysm erase` exits 2; its last stderr line is the one error (a progress bar may precede it)."""
    assert main(["erase", *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    assert errors[0].startswith("tinysm erase: error: ")
    for word in words:
        assert word in errors[0], errors[0]


@pytest.mark.parametrize("width, height, actual", [(150, 100, "200×100"), (250, 120, "200×100")],
                         ids=["image larger than its entry", "image smaller than its entry"])
def test_an_image_of_another_size_than_its_entry_is_refused(tmp_path, capsys, width, height, actual):
    path, root = write_set(tmp_path, width=width, height=height)
    message = read_error(path, root)
    assert f"is {actual} pixels, but the annotation says {width}×{height}" in message
    before = fingerprint(tmp_path)
    erase_fails([str(path), str(root), str(tmp_path / "erased")], capsys,
                str(path), "image id 7", str(root / "a.png"), f"{width}×{height}")
    assert fingerprint(tmp_path) == before and not (tmp_path / "erased").exists()  # checked before writing


def test_a_tile_corner_outside_its_image_is_refused(tmp_path):
    path, root = write_set(tmp_path, width=80, height=100, corner=[150, 0, 230, 100])
    assert "too small for the tile corner [150, 0, 230, 100]" in read_error(path, root)
    # Tiles inside the image still read, and a later tile of the same decoded file is checked too.
    full, _ = write_set(tmp_path / "full")
    tiles = cut_tiles(load_annotations(full), tile=(120, 80), overlap=(20, 20), keep_empty=True)
    tiles.images[1].corner = (80, 0, 260, 80)
    dataset = DetectionDataset(tiles, tmp_path / "full" / "images")
    assert dataset[0][0].shape == (3, 80, 120)
    with pytest.raises(ValueError, match=r"image id 1: image file .*a\.png is 200×100 pixels, too small"):
        dataset[1]


@pytest.mark.parametrize("damage, problem", [
    (lambda data: data[: len(data) // 2], "is truncated or corrupt"),
    (lambda data: b"not an image at all" * 10, "is not an image Pillow can read"),
    (lambda data: b"", "is not an image Pillow can read"),
], ids=["truncated", "garbage", "empty"])
@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_corrupt_and_truncated_files_are_named(tmp_path, capsys, damage, problem, suffix):
    path, root = write_set(tmp_path, name="a.png")
    image = root / "a.png"
    if suffix == "jpg":  # the same entry, its file written as JPEG under the same name
        Image.open(image).convert("RGB").save(image, format="JPEG")
    image.write_bytes(damage(image.read_bytes()))
    assert problem in read_error(path, root)
    before = fingerprint(tmp_path)
    erase_fails([str(path), str(root), str(tmp_path / "erased")], capsys, str(path), "image id 7", str(image), problem)
    assert fingerprint(tmp_path) == before and not (tmp_path / "erased").exists()


def test_a_missing_image_is_named_with_its_annotation_file(tmp_path):
    path, root = write_set(tmp_path)
    (root / "a.png").unlink()
    assert read_error(path, root).endswith("a.png does not exist")


def test_sixteen_bit_greyscale_keeps_its_values_and_float_pixels_are_refused(tmp_path):
    grey = (np.arange(200, dtype=np.uint16)[None, :] * 300).repeat(100, axis=0)  # up to 59,700
    path, root = write_set(tmp_path, pixels=grey)
    assert Image.open(root / "a.png").mode == "I;16"
    pixels = DetectionDataset(load_annotations(path), root)[0][0]
    expected = torch.from_numpy((grey >> 8).astype(np.uint8))  # the high byte, as Pillow's 16-bit RGB
    assert all(torch.equal(pixels[channel], expected) for channel in range(3))
    assert int(pixels.max()) == 59700 >> 8  # not clipped to white

    floats = tmp_path / "floats"
    floats.mkdir()
    path, root = write_set(floats)  # the entry's file rewritten as a TIFF of 32-bit float pixels
    Image.fromarray(np.full((100, 200), 0.5, np.float32)).save(root / "a.png", format="TIFF")
    assert "pixel mode 'F'" in read_error(path, root)


def test_a_worker_process_failure_is_still_one_line(tmp_path):
    path, root = write_set(tmp_path, width=150)
    loader = DataLoader(DetectionDataset(load_annotations(path), root), batch_size=None, num_workers=1)
    with pytest.raises(ValueError) as info:
        next(iter(loader))
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(f"{path}: image id 7: image file {root / 'a.png'} is 200×100 pixels"), message


def test_training_on_a_wrong_size_image_stops_with_one_line(tmp_path, capsys):
    from engine_support import write_toy_dataset

    annotations = write_toy_dataset(tmp_path / "data", images=2)
    data = json.loads(annotations.read_text())
    data["images"][1]["width"] = 90
    annotations.write_text(json.dumps(data))
    config = tmp_path / "train.yaml"
    config.write_text(f"detector: adaptive_retinanet\nbackbone: resnet18\nbackbone_weights: null\n"
                      f"train_annotations: {annotations}\ntrain_images: {tmp_path / 'data' / 'images'}\n"
                      f"out_dir: {tmp_path / 'run'}\ndevice: cpu\nworkers: 0\nbatch_size: 2\nepochs: 1\n"
                      "milestones: [1]\nmax_iters: 1\n")
    before = fingerprint(tmp_path / "data")
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith(
        f"tinysm train: error: {annotations}: image id 1: image file {tmp_path / 'data' / 'images' / '001.jpg'} "
        "is 96×64 pixels, but the annotation says 90×64"), err
    assert fingerprint(tmp_path / "data") == before


def test_erase_refuses_a_tile_file_before_writing(tmp_path, capsys):
    path, root = write_set(tmp_path)
    tiles = tmp_path / "tiles.json"
    assert main(["tiles", str(path), str(tiles), "--tile", "120", "80", "--overlap", "20", "20", "--keep-empty"]) == 0
    capsys.readouterr()
    before = fingerprint(tmp_path)
    erase_fails([str(tiles), str(root), str(tmp_path / "erased")], capsys,
                str(tiles), "image id 0 (and 3 more)", "is a tile", "erase works on full images")
    assert fingerprint(tmp_path) == before and not (tmp_path / "erased").exists()
    # Cutting a tile file again is refused the same way, naming the file.
    assert main(["tiles", str(tiles), str(tmp_path / "again.json")]) == 2
    assert f"{tiles}: image id 0 (and 3 more): is a tile" in capsys.readouterr().err
