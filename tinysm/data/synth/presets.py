"""Named synthetic data sets: a data root called `data/<name>` is generated from `PRESETS[name]`.

- `synthetic`: the default, TinyPerson-sized frames (1280×720 to 1920×1080), for GPU runs;
- `synthetic_cpu`: the CPU study's set, fixed before any arm was run (docs/reference.md §1.3 kept:
  COCO-like objects about five times the tiny persons' size). Frames of 320×256 are a single
  640×512 tile each, so a 2-core CPU trains a detector from scratch in minutes; 48 training frames
  are few on purpose, as TinyPerson's 794 images are few for real tiny persons, so that the
  baseline does not saturate and pre-training has room to help; 40 test frames keep AP from being
  noise.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tinysm.data.synth.coco import CocoSceneConfig
from tinysm.data.synth.scenes import TinyPersonSceneConfig


@dataclass(frozen=True)
class SyntheticPreset:
    """The arguments of `generate` for one named set."""

    train: int = 100
    test: int = 100
    coco_train: int = 400
    coco_val: int = 50
    tiny_config: TinyPersonSceneConfig = field(default_factory=TinyPersonSceneConfig)
    coco_config: CocoSceneConfig = field(default_factory=CocoSceneConfig)

    def generate_arguments(self) -> dict[str, Any]:
        return {"train": self.train, "test": self.test, "coco_train": self.coco_train, "coco_val": self.coco_val,
                "tiny_config": self.tiny_config, "coco_config": self.coco_config}


PRESETS: dict[str, SyntheticPreset] = {
    "synthetic": SyntheticPreset(),
    "synthetic_cpu": SyntheticPreset(
        train=48, test=40, coco_train=240, coco_val=40,
        tiny_config=TinyPersonSceneConfig(frame_sizes=((320, 256),), persons=(6, 16), crowds=(0, 1),
                                          uncertain=(0, 2), boats=(0, 1), buoys=(0, 2), birds=(0, 2)),
        coco_config=CocoSceneConfig(frame_sizes=((320, 240), (240, 320)), objects=(1, 5))),
}
