"""The data step of `tinysm reproduce`: real TinyPerson + COCO when present, else the synthetic set.

Says loudly which one the run uses: numbers on synthetic data are a pipeline check, not the paper's.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tinysm.data.layout import CocoLayout, TinyPersonLayout, find_data
from tinysm.experiment_config import ExperimentConfig


def ensure_data(data_dir: Path, echo=print) -> Path:
    """The folder holding tiny_set/ and coco/: `data_dir` when the real data is there, else
    `data_dir/synthetic`, generated first when missing."""
    roots = find_data(data_dir)
    if not roots.synthetic:
        echo(f"[tinysm] data: REAL TinyPerson and COCO 2017 in {data_dir} (SPEC §1.1)")
        return data_dir
    synthetic_dir = roots.tiny_set.root.parent
    if roots.tiny_set.exists() and roots.coco.exists():
        echo(f"[tinysm] data: SYNTHETIC (no real TinyPerson/COCO in {data_dir}); using {synthetic_dir}")
    else:
        from tinysm.data.synth import generate

        echo(f"[tinysm] data: SYNTHETIC (no real TinyPerson/COCO in {data_dir}); generating {synthetic_dir}")
        generate(synthetic_dir)
    return synthetic_dir


def check_experiment_data(configs: list[ExperimentConfig]) -> None:
    """Every experiment's data root holds TinyPerson (and COCO when it pre-trains), before any work."""
    for config in configs:
        tiny, coco = TinyPersonLayout(config.data_dir / "tiny_set"), CocoLayout(config.data_dir / "coco")
        if not tiny.exists() or (config.pretrain != "none" and not coco.exists()):
            raise FileNotFoundError(
                f"{config.experiment}: data_root '{config.data_root}' has no TinyPerson (tiny_set/) "
                f"or COCO (coco/) in the layout of SPEC §1.1; put the official releases there, or run "
                f"the synthetic params (params/cpu, params/synth)")


def prepare_data(data_dir: Path, configs: list[ExperimentConfig], echo=print) -> dict[str, Any]:
    """Find or generate the data, summarise it, check every experiment's roots; returns the
    parameters of notebooks/size_distribution.ipynb for the experiments' data."""
    from tinysm.data.summary import summarize

    ensure_data(data_dir, echo)
    check_experiment_data(configs)
    root = configs[0].data_dir
    tiny, coco = TinyPersonLayout(root / "tiny_set"), CocoLayout(root / "coco")
    echo(summarize(tiny.train_annotations, tiny.test_annotations, coco.annotations()))
    return {"target_annotations": str(tiny.train_annotations), "source_annotations": str(coco.annotations())}
