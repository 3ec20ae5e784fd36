"""Pre-train -> fine-tune transfer through the engine (reference §8): a 5-class checkpoint written by
`train` (pre-trained with Scale Match onto the 1-class set) initialises a 1-class detector
(`init_from`); exactly the class-specific layers start fresh."""
from __future__ import annotations

import pytest
import torch

from engine_support import one_torch_thread, toy_config, write_toy_dataset  # noqa: F401 (autouse fixture)
from tinysm.engine.distributed import setup_distributed
from tinysm.engine.train import build_model, train

CLASS_SPECIFIC = {
    "faster_fpn": {"roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.cls_score.bias",
                   "roi_heads.box_predictor.bbox_pred.weight", "roi_heads.box_predictor.bbox_pred.bias"},
    "adaptive_retinanet": {"head.classification_head.cls_logits.weight",
                           "head.classification_head.cls_logits.bias"},
}


@pytest.mark.parametrize("detector", sorted(CLASS_SPECIFIC))
def test_five_class_checkpoint_into_one_class_detector(detector, tmp_path):
    options = {"detector_options": {"fpn_channels": 32}}
    one, five = tmp_path / "one", tmp_path / "five"
    write_toy_dataset(one, images=2)
    write_toy_dataset(five, images=2, category_ids=(1, 2, 3, 5, 7), box_sides=(20, 40))  # COCO-like ids
    pretrained = train(toy_config(five, tmp_path / "pretrain", detector=detector, max_iters=1, scale_match="sm",
                                  sm_target_annotations=str(one / "annotations.json"), **options))
    source = torch.load(pretrained, weights_only=True)
    assert source["category_ids"] == [1, 2, 3, 5, 7]

    config = toy_config(one, tmp_path / "finetune", detector=detector, init_from=str(pretrained), **options)
    torch.manual_seed(123)
    model = build_model(config, [1], setup_distributed("cpu"))
    torch.manual_seed(123)
    fresh = build_model(toy_config(one, tmp_path / "fresh", detector=detector, **options), [1],
                        setup_distributed("cpu"))

    state, fresh_state = model.state_dict(), fresh.state_dict()
    # The pre-training started from scratch (trainable BatchNorm); the fine-tuning model loads
    # pre-trained tensors, so its BatchNorm is frozen (reference §7) and keeps no batch counter.
    absent = set(source["model"]) - set(state)
    assert absent and all(name.endswith(".num_batches_tracked") for name in absent)
    not_transferred = {name for name, tensor in source["model"].items()
                       if name not in absent and not torch.equal(tensor, state[name])}
    assert not_transferred == CLASS_SPECIFIC[detector]
    for name in CLASS_SPECIFIC[detector]:  # fresh layers: the initialisation of an untouched model
        assert torch.equal(state[name], fresh_state[name])
    assert model.category_ids.tolist() == [1]


def test_the_unfrozen_ablation_takes_every_pretrained_tensor_and_is_rebuilt_for_evaluation(tmp_path):
    """`backbone_freezing: none` after pre-training: BatchNorm keeps training, so its batch counters
    transfer too, and the evaluation rebuilds the same modules from the recorded config."""
    from torch import nn

    from tinysm.experiments.run import load_trained_detector

    options = {"detector": "faster_fpn", "detector_options": {"fpn_channels": 32}}
    one, five = tmp_path / "one", tmp_path / "five"
    write_toy_dataset(one, images=2)
    write_toy_dataset(five, images=2, category_ids=(1, 2, 3, 5, 7), box_sides=(20, 40))
    pretrained = train(toy_config(five, tmp_path / "pretrain", max_iters=1, **options))
    config = toy_config(one, tmp_path / "finetune", init_from=str(pretrained), backbone_freezing="none",
                        max_iters=1, **options)
    model = build_model(config, [1], setup_distributed("cpu"))
    source = torch.load(pretrained, weights_only=True)["model"]
    assert set(source) == set(model.state_dict())
    assert isinstance(model.backbone.body.bn1, nn.BatchNorm2d) and model.backbone.body.conv1.weight.requires_grad
    rebuilt = load_trained_detector(train(config), device="cpu")  # strict load: the same modules
    assert isinstance(rebuilt.backbone.body.layer1[0].bn1, nn.BatchNorm2d)
