"""One experiment's parameters: a flat typed config, the same keys as the `parameters` cell of
notebooks/experiment.ipynb and as every file in params/ (papermill merges `-f` files shallowly and
passes tuples as strings, so every key is flat and every sequence a list).

The paper's rows (SPEC §8) live here too: `PAPER_ROWS` is the one source of the published numbers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Literal, Mapping, NamedTuple

from tinysm.config import InvalidValue, config_from_mapping
from tinysm.paths import resolve


class PaperRow(NamedTuple):
    """One row of the seed's table (SPEC §8)."""

    detector: str
    pretraining: str
    ap50_tiny: float  # published AP50_tiny, max_det 1000


# SPEC §8, in the seed's grouping: Faster-FPN rows, then Adaptive RetinaNet-c rows.
PAPER_ROWS: dict[str, PaperRow] = {
    "exp1.2": PaperRow("Faster-FPN", "ImageNet", 49.81),
    "exp4.0": PaperRow("Faster-FPN", "COCO + SM, 8×2", 50.85),
    "exp4.1": PaperRow("Faster-FPN", "COCO + SM, 4×2", 50.30),
    "exp4.2": PaperRow("Faster-FPN", "COCO + MSM, 4×2", 50.18),
    "exp2.3": PaperRow("Adap RetinaNet-c", "ImageNet", 45.22),
    "exp5.1": PaperRow("Adap RetinaNet-c", "COCO + SM, 4×2", 51.78),
    "exp5.2": PaperRow("Adap RetinaNet-c", "COCO + MSM, 4×2", 50.00),
}


@dataclass
class ExperimentConfig:
    """Pre-training (optional) -> fine-tuning on TinyPerson tiles -> tiled evaluation (SPEC §2, §4–§8).

    Paths are relative to the repository root (a papermill kernel starts in the caller's cwd).
    Learning rates are totals over all GPUs, as SPEC §8 quotes them; batch sizes are per GPU.
    """

    experiment: str                              # the paper's row, e.g. "exp4.0"; names the run folder
    detector: Literal["faster_fpn", "adaptive_retinanet"] = "faster_fpn"
    pretrain: Literal["none", "plain", "sm", "msm"] = "none"  # COCO pre-training, plain or scale-matched
    data_root: str = "data"                      # holds tiny_set/ and coco/ as in SPEC §1.1
    runs_dir: str = "runs"                       # the run is written to <runs_dir>/<experiment>/
    backbone: str = "resnet50"
    fpn_channels: int = 256                      # SPEC §7; fewer make CPU runs affordable
    imagenet_weights: bool = True                # torchvision's file: downloaded once, or cached
    device: str = "auto"                         # "auto": cuda when available, else cpu
    gpus: int = 1                                # > 1: each training stage runs under torchrun
    seed: int = 0
    workers: int = 2
    log_every: int = 20                          # iterations between training-log records
    # Fine-tuning on TinyPerson training tiles (SPEC §8: 0.005 per image, 12 epochs, steps 8 and 11).
    epochs: int = 12
    lr: float = 0.01
    batch_size: int = 1
    milestones: list[int] = field(default_factory=lambda: [8, 11])  # LR x0.1 after these epochs
    warmup_iters: int = 500
    max_iters: int | None = None                 # stop early (CPU runs); the schedule is unchanged
    max_train_images: int | None = None          # null: every training tile
    # Pre-training on COCO (SPEC §8), ignored when pretrain == "none".
    pretrain_epochs: int = 12
    pretrain_lr: float = 0.01
    pretrain_batch_size: int = 4
    pretrain_milestones: list[int] = field(default_factory=lambda: [8, 11])
    pretrain_max_iters: int | None = None
    pretrain_max_images: int | None = None       # null: every COCO training image
    # Scale Match (SPEC §3–§5): the values of every published run.
    sm_bins: int = 100
    sm_scale_range: list[float] = field(default_factory=lambda: [0.1, 1.0])
    sm_default_scale: float = 0.25
    # Evaluation (SPEC §6).
    max_test_images: int | None = None           # null: every test image
    max_dets: int = 1000
    overwrite: bool = False                      # replace a finished run of the same name

    def __post_init__(self) -> None:
        if not self.experiment or "/" in self.experiment:
            raise InvalidValue(f"'experiment' must be a plain folder name, got {self.experiment!r}")
        for key in ("gpus", "epochs", "batch_size", "pretrain_epochs", "pretrain_batch_size", "sm_bins",
                    "fpn_channels", "log_every"):
            if getattr(self, key) < 1:
                raise InvalidValue(f"'{key}' must be at least 1, got {getattr(self, key)}")
        lo, hi = self.sm_scale_range if len(self.sm_scale_range) == 2 else (None, None)
        if lo is None or not 0 < lo < hi:
            raise InvalidValue("'sm_scale_range' must be [low, high] with 0 < low < high, "
                              f"got {self.sm_scale_range}")

    @property
    def run_dir(self) -> Path:
        """Where this run's records go (absolute)."""
        return resolve(self.runs_dir) / self.experiment

    @property
    def data_dir(self) -> Path:
        return resolve(self.data_root)

    @property
    def paper_row(self) -> PaperRow | None:
        return PAPER_ROWS.get(self.experiment)


def parameters_from_namespace(namespace: Mapping[str, Any],
                              before: Mapping[str, Any] | Collection[str]) -> dict[str, Any]:
    """The variables a notebook's parameters cells set: the public names of `namespace` that were
    not in `before`, the names defined just ahead of those cells (`set(globals())`).

    papermill only warns about a parameter the notebook does not declare; collecting every new
    name lets the config reject it. With a snapshot `dict(globals())` as `before`, a parameter
    that rebinds an earlier name (an imported function, say) is caught too.
    """
    def is_parameter(name: str, value: Any) -> bool:
        if name.startswith("_"):
            return False
        if isinstance(before, Mapping):
            return name not in before or before[name] is not value
        return name not in before

    return {name: value for name, value in namespace.items() if is_parameter(name, value)}


def experiment_config_from_notebook(namespace: Mapping[str, Any], before: Mapping[str, Any] | Collection[str],
                                    where: str = "notebooks/experiment.ipynb parameters") -> ExperimentConfig:
    """The validated config of an experiment notebook's parameters (unknown keys and wrong types fail)."""
    return config_from_mapping(ExperimentConfig, parameters_from_namespace(namespace, before), where)
