"""The training data of a stage: Scale Match / Monotone SM pre-training in the pipeline (reference §4
step 4, §5), category ids from the file, image subsets, and draws that depend only on
(seed, epoch, index)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from engine_support import one_torch_thread, toy_config, write_toy_dataset  # noqa: F401 (autouse fixture)
from tinysm.engine.data import build_training_data
from tinysm.engine.distributed import setup_distributed


@pytest.fixture(scope="module")
def external_and_target(tmp_path_factory):
    """A COCO-like external set (3 classes, 30–60 px boxes in 160×128) and a tiny target (6–16 px)."""
    external, target = tmp_path_factory.mktemp("external"), tmp_path_factory.mktemp("target")
    write_toy_dataset(external, images=6, size=(160, 128), category_ids=(1, 3, 8), box_sides=(30, 60))
    write_toy_dataset(target, images=6, box_sides=(6, 16), seed=1)
    return external, target


def pretrain_config(external, target, tmp_path, **values):
    return toy_config(external, tmp_path / "run", sm_target_annotations=str(target / "annotations.json"),
                      **values)


@pytest.mark.parametrize("kind", ["sm", "msm"])
def test_scale_match_shrinks_whole_images_to_the_target_sizes(kind, external_and_target, tmp_path):
    external, target = external_and_target
    config = pretrain_config(external, target, tmp_path, scale_match=kind)
    loader, dataset, sampler, category_ids = build_training_data(config, setup_distributed("cpu"))
    assert category_ids == [1, 3, 8]  # every class of the external set (reference §8: all COCO classes)
    sides = []
    for index in range(len(dataset)):
        image, target_boxes = dataset[index]
        height, width = image.shape[-2:]
        scale = width / 160
        assert image.dtype == torch.float32 and 0.1 <= scale <= 1.0
        assert abs(height - scale * 128) <= 1  # one factor for both axes (each rounded), no crop
        boxes = target_boxes["boxes"]
        sides += torch.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).tolist()
    # 30–60 px objects brought down to the target's 6–16 px (+ rounding of the resize)
    assert 5 < np.median(sides) < 17


def test_sm_draws_change_with_the_epoch_and_msm_does_not(external_and_target, tmp_path):
    external, target = external_and_target
    widths = {}
    for kind in ("sm", "msm"):
        _, dataset, _, _ = build_training_data(pretrain_config(external, target, tmp_path / kind, scale_match=kind),
                                               setup_distributed("cpu"))
        per_epoch = []
        for epoch in (0, 0, 1):
            dataset.set_epoch(epoch)
            per_epoch.append([dataset[i][0].shape[-1] for i in range(len(dataset))])
        widths[kind] = per_epoch
    assert widths["sm"][0] == widths["sm"][1] != widths["sm"][2]  # random, but a function of the epoch
    assert widths["msm"][0] == widths["msm"][1] == widths["msm"][2]  # deterministic (reference §5)


def test_loader_batches_and_subset(external_and_target, tmp_path):
    external, _ = external_and_target
    config = toy_config(external, tmp_path / "run", max_images=5, batch_size=2)
    loader, dataset, sampler, _ = build_training_data(config, setup_distributed("cpu"))
    sampler.set_position(0)
    assert len(dataset) == 5 and len(loader) == math.ceil(5 / 2)
    seen = [int(target["image_id"]) for _, targets in loader for target in targets]
    assert sorted(seen) == [0, 1, 2, 3, 4]
    sampler.set_position(0, start=2)  # resuming after one batch: the rest of the same permutation
    assert [int(t["image_id"]) for _, targets in loader for t in targets] == seen[2:]


def test_batches_do_not_depend_on_the_number_of_workers(external_and_target, tmp_path):
    external, _ = external_and_target
    epochs = {}
    for workers in (0, 2):
        loader, dataset, sampler, _ = build_training_data(
            toy_config(external, tmp_path / f"w{workers}", workers=workers, batch_size=2), setup_distributed("cpu"))
        dataset.set_epoch(1)
        sampler.set_position(1)
        epochs[workers] = [(t["image_id"], t["boxes"].tolist()) for _, targets in loader for t in targets]
    assert epochs[0] == epochs[2]  # same order, same random flips


def test_training_data_is_filtered_as_the_reference_filters_it(tmp_path):
    """reference §7.1 (mmdetection's datasets): images without any annotation are left out; boxes with
    w < 1, h < 1, area <= 0 or outside the image are dropped; an image whose boxes all go stays."""
    from tinysm.data.annotations import AnnotationError, load_annotations
    from tinysm.engine.data import reference_training_set

    def box(i, image_id, bbox, **extra):
        return {"id": i, "image_id": image_id, "category_id": 1, "bbox": bbox, **extra}
    raw = {"images": [{"id": i, "file_name": f"{i}.jpg", "width": 100, "height": 80} for i in (1, 2, 3)],
           "categories": [{"id": 1, "name": "person"}],
           "annotations": [box(10, 1, [10, 10, 5, 5]),              # kept
                           box(11, 1, [10, 10, 0.5, 5]),            # w < 1
                           box(12, 1, [10, 10, 5, 0]),              # h = 0 (a loading error by default)
                           box(13, 1, [10, 10, 5, 5], area=0),      # area <= 0
                           box(14, 1, [100, 10, 5, 5]),             # starts at the right border: outside
                           box(15, 3, [-9, -9, 5, 5])]}             # outside; image 3 keeps no box
    path = tmp_path / "train.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(AnnotationError, match=r"annotation id 12 \(index 2\): 'bbox' width and height must be > 0"):
        load_annotations(path)
    subset, note = reference_training_set(load_annotations(path, allow_degenerate_boxes=True))
    assert [image.id for image in subset.images] == [1, 3]  # image 2 has no annotation at all
    assert [a.id for a in subset.annotations] == [10]
    assert "1 image(s) without annotations and 5 box(es)" in note
    kept, nothing = reference_training_set(subset.with_annotations(subset.annotations, subset.images[:1]))
    assert nothing is None and [a.id for a in kept.annotations] == [10]
