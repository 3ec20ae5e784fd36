"""Weight transfer between class sets (reference §8): name-and-shape matching, the engine's checkpoint format."""
from __future__ import annotations

import pytest
import torch

from tinysm.models import load_matching_weights

from model_support import one_thread, small_detector  # noqa: F401 (one_thread: autouse fixture)

CLASS_SPECIFIC = {
    "faster_fpn": {"roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.cls_score.bias",
                   "roi_heads.box_predictor.bbox_pred.weight", "roi_heads.box_predictor.bbox_pred.bias"},
    "adaptive_retinanet": {"head.classification_head.cls_logits.weight", "head.classification_head.cls_logits.bias"},
}


class Callback:
    """An arbitrary Python object: unpickling it would run code, so weights_only must refuse it."""


def pair(name: str):
    """A 5-class "COCO-like" source and a fresh 1-class target with different random weights."""
    return small_detector(name, 5, seed=0), small_detector(name, 1, seed=1)


@pytest.mark.parametrize("name", sorted(CLASS_SPECIFIC))
def test_five_class_checkpoint_into_one_class_detector(name, tmp_path):
    source, target = pair(name)
    fresh = {k: v.clone() for k, v in target.state_dict().items()}
    path = tmp_path / "pretrain.pth"
    # The engine's checkpoint format: the state_dict under "model", beside optimiser state and counters.
    torch.save({"model": source.state_dict(), "optimizer": {"state": {}}, "epoch": 12}, path)
    report = load_matching_weights(target, path)
    assert set(report.missing) == CLASS_SPECIFIC[name]
    assert set(report.skipped) == CLASS_SPECIFIC[name]
    expected_reason = {"faster_fpn": ("roi_heads.box_predictor.cls_score.weight", "(6, 1024)", "(2, 1024)"),
                       "adaptive_retinanet": ("head.classification_head.cls_logits.weight", "(45, 32, 3, 3)",
                                              "(9, 32, 3, 3)")}[name]  # 9 anchors × classes
    assert report.skipped[expected_reason[0]] == (f"shape {expected_reason[1]} in the checkpoint, "
                                                  f"{expected_reason[2]} in the model")
    after = target.state_dict()
    for key, value in source.state_dict().items():
        expected = fresh[key] if key in CLASS_SPECIFIC[name] else value
        torch.testing.assert_close(after[key], expected, rtol=0, atol=0, msg=key)
    assert set(report.loaded) == set(after) - CLASS_SPECIFIC[name]
    assert target.category_ids.tolist() == [1]  # class ids belong to the model, never to the checkpoint
    assert f"loaded {len(report.loaded)} tensors, skipped {len(CLASS_SPECIFIC[name])}" in report.summary()


def test_bare_and_ddp_state_dicts_load_too():
    source, target = pair("adaptive_retinanet")
    ddp_style = {f"module.{k}": v for k, v in source.state_dict().items()}
    for checkpoint in (source.state_dict(), ddp_style):
        report = load_matching_weights(target, checkpoint)
        assert report.source == "<state_dict>" and set(report.missing) == CLASS_SPECIFIC["adaptive_retinanet"]
    torch.testing.assert_close(target.backbone.fpn.extra_blocks.p6.weight, source.backbone.fpn.extra_blocks.p6.weight)


def test_faster_checkpoint_into_retinanet_shares_only_the_backbone():
    faster, _ = pair("faster_fpn")
    _, retinanet = pair("adaptive_retinanet")
    report = load_matching_weights(retinanet, {"model": faster.state_dict()})
    assert report.loaded and all(name.startswith("backbone.") for name in report.loaded)
    assert "rpn.head.conv.0.0.weight" in report.skipped and report.skipped["rpn.head.conv.0.0.weight"] == "not in the model"


def test_unreadable_checkpoints_name_the_file(tmp_path):
    _, target = pair("faster_fpn")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_matching_weights(target, tmp_path / "missing.pth")
    text = tmp_path / "notes.pth"
    text.write_text("hello")
    with pytest.raises(ValueError, match="notes.pth: cannot be read as a PyTorch checkpoint"):
        load_matching_weights(target, text)
    # weights_only=True: a pickled arbitrary object is refused instead of executed.
    pickled = tmp_path / "object.pth"
    torch.save({"model": target.state_dict(), "callback": Callback()}, pickled)
    with pytest.raises(ValueError, match="object.pth: cannot be read"):
        load_matching_weights(target, pickled)
    unrelated = tmp_path / "mlp.pth"
    torch.save(torch.nn.Linear(3, 2).state_dict(), unrelated)
    with pytest.raises(ValueError, match="mlp.pth: no tensor matches the model"):
        load_matching_weights(target, unrelated)
    with pytest.raises(ValueError, match="neither a state_dict nor a checkpoint"):
        load_matching_weights(target, {"model": {"weight": "not a tensor"}})
