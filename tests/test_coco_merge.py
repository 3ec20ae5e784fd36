"""The reference's pre-training file, train2017 + val2017 merged (reference §8): `tinysm merge-coco`."""
from __future__ import annotations

import json

import pytest

from tinysm.cli import main
from tinysm.data.annotations import load_annotations
from tinysm.data.layout import CocoLayout
from tinysm.data.synth import CocoSceneConfig, TinyPersonSceneConfig, generate


@pytest.fixture(scope="module")
def coco(tmp_path_factory) -> CocoLayout:
    root = tmp_path_factory.mktemp("synthetic")
    return generate(root, train=1, test=1, coco_train=3, coco_val=2, workers=1,
                    tiny_config=TinyPersonSceneConfig(frame_sizes=((320, 256),)),
                    coco_config=CocoSceneConfig(frame_sizes=((160, 120),))).coco


def test_merged_file_holds_both_splits_with_their_ids_and_folders(coco):
    merged = load_annotations(coco.annotations("merge2017"), image_root=coco.images("merge2017"), check_files=True)
    train, val = load_annotations(coco.annotations("train2017")), load_annotations(coco.annotations("val2017"))
    assert [i.id for i in merged.images] == [i.id for i in train.images + val.images] == [1, 2, 3, 4, 5]
    assert [i.file_name for i in merged.images] == (
        [f"train2017/{i.file_name}" for i in train.images] + [f"val2017/{i.file_name}" for i in val.images])
    assert [a.id for a in merged.annotations] == [a.id for a in train.annotations + val.annotations]
    assert merged.categories == train.categories and coco.images("merge2017") == coco.root


def test_the_command_rebuilds_the_generators_file_byte_for_byte(coco, tmp_path, capsys):
    out = tmp_path / "merged.json"
    assert main(["merge-coco", str(coco.root), "--out", str(out)]) == 0
    assert out.read_bytes() == coco.annotations("merge2017").read_bytes()
    assert f"written: {out}" in capsys.readouterr().out


def copy_splits(coco: CocoLayout, root, edit_val=None) -> CocoLayout:
    target = CocoLayout(root)
    target.annotations("train2017").parent.mkdir(parents=True)
    for split in ("train2017", "val2017"):
        raw = json.loads(coco.annotations(split).read_text())
        if split == "val2017" and edit_val:
            edit_val(raw)
        target.annotations(split).write_text(json.dumps(raw))
    return target


@pytest.mark.parametrize("edit, message", [
    (lambda raw: raw["categories"].pop(), r"instances_val2017\.json: categories: differ from those of .*instances_train2017\.json"),
    (lambda raw: raw["images"][0].update(id=1) or [a.update(image_id=1) for a in raw["annotations"]
                                                   if a["image_id"] == 4],
     r"instances_val2017\.json: image id 1: also used in train2017"),
])
def test_splits_that_cannot_be_merged_are_one_line_and_write_nothing(coco, tmp_path, capsys, edit, message):
    layout = copy_splits(coco, tmp_path / "coco", edit)
    assert main(["merge-coco", str(layout.root)]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and __import__("re").search(message, error), error
    assert not layout.annotations("merge2017").exists()


def test_the_merged_file_never_replaces_an_input(coco, tmp_path, capsys):
    layout = copy_splits(coco, tmp_path / "coco")
    before = layout.annotations("val2017").read_bytes()
    assert main(["merge-coco", str(layout.root), "--out", str(layout.annotations("val2017"))]) == 2
    assert "would destroy" in capsys.readouterr().err
    assert layout.annotations("val2017").read_bytes() == before


def test_pretraining_on_real_data_without_the_merged_file_says_how_to_make_it(coco, tmp_path):
    from tinysm.experiments.config import load_experiment_config
    from tinysm.experiments.reproduce_data import check_experiment_data
    from tinysm.paths import repo_root

    root = tmp_path / "data"
    copy_splits(coco, root / "coco")
    (root / "coco" / "train2017").mkdir()
    generate(tmp_path / "tiny", train=1, test=1, coco_train=0, coco_val=0, workers=1,
             tiny_config=TinyPersonSceneConfig(frame_sizes=((320, 256),))).tiny_set.root.rename(root / "tiny_set")
    config = load_experiment_config(repo_root() / "params" / "paper" / "exp4.1.yaml", {"data_root": str(root)})
    with pytest.raises(FileNotFoundError, match=r"instances_merge2017\.json .*tinysm merge-coco .*coco`"):
        check_experiment_data([config])
    check_experiment_data([load_experiment_config(repo_root() / "params" / "paper" / "exp1.2.yaml",
                                                  {"data_root": str(root)})])  # no pre-training: fine
