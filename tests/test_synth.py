"""The synthetic data generator: drawing primitives, figures, determinism, and the real loading path.

One tiny set (3+3 TinyPerson frames, 4+2 COCO images) is generated once per module; its files are
read back exactly as a user's downloaded data would be (reference §1.1, §1.2, §2).
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from tinysm.cli import main
from tinysm.data.annotations import FLAG_KEYS, load_annotations
from tinysm.data.layout import find_data
from tinysm.data.synth import generate
from tinysm.data.synth.coco import CATEGORIES, coco_scene
from tinysm.data.synth.figures import POSES, person
from tinysm.data.synth.frames import coco_bbox
from tinysm.data.synth.raster import Capsule, Ellipse, Part, Polygon, paint
from tinysm.data.synth.scenes import tinyperson_scene
from tinysm.data.synth.tinyperson import assign_roles
from tinysm.data.synth.workers import image_rng

SMALL = dict(seed=3, train=3, test=3, coco_train=4, coco_val=2)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth") / "synthetic", workers=1, **SMALL)


def read_json(path):
    with open(path) as handle:
        return json.load(handle)


def sizes_of(annotations, keep=lambda a: True):
    return np.array([math.sqrt(a.bbox[2] * a.bbox[3]) for a in annotations.annotations if keep(a)])


# ----------------------------------------------------------------------------- drawing primitives

def test_square_on_pixel_edges_covers_exactly_its_pixels():
    canvas = np.zeros((8, 8, 3), dtype=np.uint8)
    paint(canvas, Part(Polygon(((2, 2), (6, 2), (6, 6), (2, 6))), (255, 255, 255)))
    expected = np.zeros((8, 8), dtype=np.uint8)
    expected[2:6, 2:6] = 255  # pixel centres 2.5..5.5 are 0.5 inside: full coverage; outside ones 0
    np.testing.assert_array_equal(canvas[..., 0], expected)


def test_edge_through_pixel_centres_gives_half_coverage():
    canvas = np.zeros((4, 8, 3), dtype=np.uint8)
    paint(canvas, Part(Polygon(((0, 0), (2.5, 0), (2.5, 4), (0, 4))), (200, 100, 0)))
    # Column 2's centre (2.5) lies on the edge: coverage 0.5, so half the colour, rounded.
    assert canvas[0, :4].tolist() == [[200, 100, 0], [200, 100, 0], [100, 50, 0], [0, 0, 0]]


def test_softness_widens_the_ramp_and_keeps_the_midpoint():
    sharp, soft = (np.zeros((12, 12, 3), dtype=np.uint8) for _ in range(2))
    square = Part(Polygon(((0, 0), (6, 0), (6, 12), (0, 12))), (240, 240, 240))
    paint(sharp, square, softness=1.0)
    paint(soft, square, softness=3.0)
    # Distance to the edge x=6 is d = centre − 6; coverage clip(0.5 − d/3) at centres
    # 3.5, 4.5, 5.5, 6.5, 7.5 is 1, 1, 2/3, 1/3, 0.
    assert soft[6, 3:8, 0].tolist() == [240, 240, 160, 80, 0]
    assert sharp[6, 3:8, 0].tolist() == [240, 240, 240, 0, 0]


def test_shape_bounds_are_exact():
    assert Capsule(1, 2, 5, 3, 0.5).bounds() == (0.5, 1.5, 5.5, 3.5)
    x1, y1, x2, y2 = Ellipse(10, 10, 4, 2, angle=math.pi / 2).bounds()
    assert (x1, y1, x2, y2) == pytest.approx((8, 6, 12, 14))


# ----------------------------------------------------------------------------- figures

@pytest.mark.parametrize("pose", POSES)
def test_person_box_has_the_requested_size_and_centre(pose):
    rng = np.random.default_rng(7)
    for size in (6.0, 12.0, 30.0):
        figure = person(rng, (100.0, 80.0), size, pose)
        x1, y1, x2, y2 = figure.box
        assert figure.size == pytest.approx(size, rel=0.15)
        assert ((x1 + x2) / 2, (y1 + y2) / 2) == pytest.approx((100.0, 80.0), abs=1e-6)


def test_swimmers_show_less_body_than_standing_people():
    rng = np.random.default_rng(0)
    aspect = {pose: [] for pose in ("standing", "swimming")}
    for _ in range(20):
        for pose in aspect:
            x1, y1, x2, y2 = person(rng, (50.0, 50.0), 20.0, pose).box
            aspect[pose].append((y2 - y1) / (x2 - x1))
    # Standing people are about 3× taller than wide; a swimmer is head, shoulders and arms.
    assert np.median(aspect["standing"]) > 2.0 > np.median(aspect["swimming"])


def test_unknown_pose_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown pose 'flying'"):
        person(np.random.default_rng(0), (0, 0), 10, "flying")


def test_coco_bbox_clips_to_the_image_and_rounds_to_hundredths():
    assert coco_bbox((-3.0, 10.123, 50.456, 700.0), 640, 480) == (0.0, 10.12, 50.46, 469.88)


def test_assign_roles_has_every_kind_from_three_frames():
    rng = np.random.default_rng(0)
    assert sorted(assign_roles(3, rng)) == ["background", "dense", "regular"]
    roles = assign_roles(100, rng)
    assert (roles.count("dense"), roles.count("background"), roles.count("regular")) == (3, 8, 89)
    assert assign_roles(2, rng) == ["regular", "regular"]


# ----------------------------------------------------------------------------- scenes

def test_same_stream_same_scene_other_seed_other_scene():
    first = tinyperson_scene(image_rng(5, "tiny_train", 1))
    again = tinyperson_scene(image_rng(5, "tiny_train", 1))
    other = tinyperson_scene(image_rng(6, "tiny_train", 1))
    np.testing.assert_array_equal(first.canvas, again.canvas)
    assert first.boxes == again.boxes
    assert first.canvas.shape != other.canvas.shape or not np.array_equal(first.canvas, other.canvas)


def test_people_stand_out_from_the_background(synthetic):
    """Drawn people, not boxes of noise: a person's pixels differ in colour from a ring around it."""
    layout = synthetic.tiny_set
    test = load_annotations(layout.test_annotations, layout.test_images)
    contrasts = []
    for image in test.images:
        pixels = np.asarray(Image.open(layout.test_images / image.file_name).convert("RGB"), dtype=float)
        for ann in test.annotations_by_image[image.id]:
            x, y, w, h = ann.bbox
            if ann.is_ignored or math.sqrt(w * h) < 8:
                continue
            x1, y1, x2, y2 = int(x), int(y), int(math.ceil(x + w)), int(math.ceil(y + h))
            ring = pixels[max(0, y1 - 4):y2 + 4, max(0, x1 - 4):x2 + 4].reshape(-1, 3).mean(axis=0)
            inside = pixels[y1:y2, x1:x2].reshape(-1, 3).mean(axis=0)
            contrasts.append(np.abs(inside - ring).max())
    assert len(contrasts) >= 20
    assert np.mean(np.array(contrasts) > 8) >= 0.9


def test_coco_objects_are_about_five_times_larger_than_tiny_people():
    coco = [b for i in range(25) for b in coco_scene(image_rng(0, "coco_train", i)).boxes if not b.iscrowd]
    tiny = [b for i in range(4) for b in tinyperson_scene(image_rng(0, "tiny_train", i)).boxes
            if not (b.ignore or b.uncertain)]

    def median_size(boxes):
        return np.median([math.sqrt((b.box[2] - b.box[0]) * (b.box[3] - b.box[1])) for b in boxes])

    assert 3.0 < median_size(coco) / median_size(tiny) < 8.0
    assert {b.category_id for b in coco} >= {1, 9, 16}


# ----------------------------------------------------------------------------- the written set

def test_same_seed_gives_identical_bytes_serial_or_parallel(synthetic, tmp_path):
    again = generate(tmp_path / "again", workers=2, **SMALL)
    first = sorted(p.relative_to(synthetic.root) for p in synthetic.root.rglob("*") if p.is_file())
    second = sorted(p.relative_to(again.root) for p in again.root.rglob("*") if p.is_file())
    assert first == second and len(first) > 20
    for relative in first:
        assert (synthetic.root / relative).read_bytes() == (again.root / relative).read_bytes(), relative


def test_official_layout_loads_with_the_user_data_path(synthetic):
    layout = synthetic.tiny_set
    assert find_data(synthetic.root.parent / "nowhere", synthetic.root).tiny_set == layout
    train = load_annotations(layout.train_annotations, layout.train_images, check_files=True)
    test = load_annotations(layout.test_annotations, layout.test_images, check_files=True)
    mini_test = load_annotations(layout.mini_test_annotations, layout.test_images, check_files=True)
    erase = load_annotations(layout.train_erase_annotations, layout.erase_train_images, check_files=True)
    tiles = load_annotations(layout.train_tile_annotations, layout.erase_train_images, check_files=True)
    assert [im.id for im in train.images] == [0, 1, 2] and train.annotations[0].id == 0
    assert {c["id"]: c["name"] for c in train.categories} == {1: "sea_person", 2: "earth_person"}
    assert {c["id"] for c in test.categories} == {a.category_id for a in test.annotations} == {1}
    for image in train.images + test.images:
        assert image.file_name.startswith("labeled_images/") and image.file_name.endswith(".jpg")
        assert 1280 <= image.width <= 1920 and 720 <= image.height <= 1080
    dense_test = {a.image_id for a in test.annotations if a.in_dense_image}
    assert len(dense_test) == 1 and len(test.annotations_by_image[dense_test.pop()]) > 200
    assert {im.id for im in mini_test.images} == {im.id for im in test.images} - {
        a.image_id for a in test.annotations if a.in_dense_image}
    assert any(not anns for anns in test.annotations_by_image.values())  # a pure background frame
    for name in ("ignore", "uncertain"):
        assert any(getattr(a, name) for a in train.annotations + test.annotations), name
    assert not any(a.ignore or a.uncertain or a.logo or a.in_dense_image for a in erase.annotations)
    assert all(im.corner is not None and (im.width, im.height) == (640, 512) for im in tiles.images)


def test_raw_file_writes_every_tinyperson_field(synthetic):
    raw = read_json(synthetic.tiny_set.train_annotations)
    for ann in raw["annotations"]:
        assert set(ann) == {"id", "image_id", "category_id", "bbox", "area", *FLAG_KEYS}
        assert ann["iscrowd"] == 0 and all(isinstance(ann[k], bool) for k in FLAG_KEYS if k != "iscrowd")
        assert ann["area"] == ann["bbox"][2] * ann["bbox"][3] and min(ann["bbox"][2:]) > 0
        assert not ann["logo"] or ann["ignore"]  # logos are ignore regions


def test_tile_file_feeds_the_detection_dataset(synthetic):
    from tinysm.data.datasets import DetectionDataset

    layout = synthetic.tiny_set
    tiles = load_annotations(layout.train_tile_annotations, layout.erase_train_images, check_files=True)
    dataset = DetectionDataset(tiles, drop_ignored=True)
    assert len(dataset) == len(tiles.images) > 0
    image, target = dataset[len(dataset) - 1]
    assert tuple(image.shape) == (3, 512, 640)
    boxes = target["boxes"]
    assert len(boxes) > 0 and target["labels"].unique().tolist() == [1]
    assert float(boxes[:, 0].min()) >= 0 and float(boxes[:, 2].max()) <= 640
    assert float(boxes[:, 1].min()) >= 0 and float(boxes[:, 3].max()) <= 512


def test_people_have_tinyperson_sizes(synthetic):
    tiles = load_annotations(synthetic.tiny_set.train_tile_annotations)
    test = load_annotations(synthetic.tiny_set.test_annotations)
    sizes = np.concatenate([sizes_of(tiles), sizes_of(test, lambda a: not a.is_ignored)])
    assert np.mean((sizes >= 2) & (sizes <= 20)) >= 0.8          # reference §1.3: most between 2 and 20 px
    assert np.mean((sizes >= 8) & (sizes <= 20)) >= 0.3          # enough learnable ones


def test_coco_layout_ids_and_categories(synthetic):
    coco = synthetic.coco
    train = load_annotations(coco.annotations("train2017"), coco.images("train2017"), check_files=True)
    val = load_annotations(coco.annotations("val2017"), coco.images("val2017"), check_files=True)
    assert [im.id for im in train.images + val.images] == list(range(1, 7))
    ids = [a.id for a in train.annotations + val.annotations]
    assert ids == list(range(1, len(ids) + 1))
    assert train.categories == CATEGORIES and [c["id"] for c in CATEGORIES] == [1, 3, 9, 16, 28, 37]
    assert all(im.file_name == f"{im.id:012d}.jpg" and max(im.width, im.height) == 640 for im in train.images)


def test_existing_output_is_not_overwritten(synthetic, capsys):
    before = synthetic.tiny_set.train_annotations.read_bytes()
    code = main(["synth", "--out", str(synthetic.root), "--train", "1", "--test", "1",
                 "--coco-train", "1", "--coco-val", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "already exist" in err and str(synthetic.root / "tiny_set") in err and "--overwrite" in err
    assert synthetic.tiny_set.train_annotations.read_bytes() == before


def test_negative_counts_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="train must be >= 0, got -1"):
        generate(tmp_path, train=-1)


def test_command_prints_the_summary_and_saves_the_figure(tmp_path, capsys):
    figure = tmp_path / "examples.png"
    code = main(["synth", "--out", str(tmp_path / "data"), "--seed", "1", "--train", "1", "--test", "3",
                 "--coco-train", "1", "--coco-val", "2", "--workers", "1", "--figure", str(figure)])
    assert code == 0
    out = capsys.readouterr().out
    assert "tiny_set test (all): 3 images (1 without boxes, 1 dense)" in out and "coco val2017: 2 images" in out
    with Image.open(figure) as image:
        assert image.format == "PNG" and image.width > 1000
