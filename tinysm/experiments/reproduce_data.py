"""The data step of `tinysm reproduce`: real TinyPerson + COCO when present, else the synthetic set.

It says loudly which one the run uses: numbers on synthetic data check the pipeline, they are not
the paper's.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from tinysm.data.layout import MERGED_SPLIT, CocoLayout, TinyPersonLayout, find_data, layouts
from tinysm.data.synth.presets import PRESETS
from tinysm.experiments.config import ExperimentConfig


def describe_data(tiny_set: TinyPersonLayout, coco: CocoLayout) -> str:
    """The dataset summary of the files the experiments read (training tiles, test set, COCO train)."""
    from tinysm.data.annotations import load_annotations
    from tinysm.data.summary import summarize

    files = (("tiny_set train tiles (all, erase)", tiny_set.train_tile_annotations),
             ("tiny_set test (all)", tiny_set.test_annotations), ("coco train2017", coco.annotations()))
    return "\n".join(summarize(load_annotations(path), name).format() for name, path in files)


def ensure_data(data_dir: Path, configs: list[ExperimentConfig], echo: Callable[[str], None] = print) -> None:
    """Say whether real data is in `data_dir`; generate a synthetic set `data_dir/<preset>` (see
    `tinysm.data.synth.presets`) when an experiment reads it and it is not there yet; print a
    summary of each data root used."""
    if find_data(data_dir).synthetic:
        echo(f"[tinysm] no real TinyPerson/COCO in {data_dir} (docs/reference.md §1.1); "
             f"synthetic sets live in {data_dir}/<{'|'.join(PRESETS)}>")
    for root in sorted({config.data_dir for config in configs}):
        tiny, coco = layouts(root)
        preset = PRESETS.get(root.name) if root.parent == data_dir else None
        if preset is not None and not (tiny.exists() and coco.exists()):
            from tinysm.data.synth import generate

            echo(f"[tinysm] generating the synthetic TinyPerson and COCO '{root.name}' in {root}")
            generate(root, overwrite=True, **preset.generate_arguments())  # a partial set is replaced whole
        if preset is not None and coco.exists() and not coco.annotations(MERGED_SPLIT).is_file():
            from tinysm.data.coco_merge import merge_coco_splits

            echo(f"[tinysm] merging the synthetic COCO train2017 + val2017 (reference §8) in {coco.root}")
            merge_coco_splits(coco)  # a set generated before the merged file was part of it
        if tiny.exists() and coco.exists():
            echo(f"[tinysm] data: {'SYNTHETIC' if preset is not None else 'REAL'} TinyPerson and COCO in {root}")
            echo(describe_data(tiny, coco))


def check_experiment_data(configs: list[ExperimentConfig]) -> None:
    """Every experiment's data root holds TinyPerson (and COCO when it pre-trains), before any work."""
    for config in configs:
        tiny, coco = layouts(config.data_dir)
        if not tiny.exists() or (config.pretrain != "none" and not coco.exists()):
            raise FileNotFoundError(
                f"{config.experiment}: data_root '{config.data_root}' lacks TinyPerson (tiny_set/) or "
                f"COCO 2017 (coco/) in the layout of docs/reference.md §1.1; put the official releases there, or "
                f"run the synthetic params (params/cpu, params/synth)")
        merged = coco.annotations(MERGED_SPLIT)
        if config.pretrain != "none" and not merged.is_file():
            raise FileNotFoundError(
                f"{config.experiment}: pre-training reads {merged} (train2017 + val2017 merged, as the "
                f"reference; docs/reference.md §8), which COCO does not ship: make it once with "
                f"`tinysm merge-coco {coco.root}`")


def prepare_data(data_dir: Path, configs: list[ExperimentConfig],
                 echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Find or generate the data, check every experiment's roots; returns the parameters of
    notebooks/size_distribution.ipynb (target: TinyPerson training boxes, source: COCO's)."""
    ensure_data(data_dir, configs, echo)
    check_experiment_data(configs)
    root = configs[0].data_dir
    tiny, coco = layouts(root)
    return {"target_annotations": str(tiny.train_erase_annotations),
            "source_annotations": str(coco.annotations())}
