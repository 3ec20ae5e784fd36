"""The notebook-facing configs: one experiment (`ExperimentConfig`, the params files), and the
parameters of the results and size-distribution notebooks.

`ExperimentConfig`'s defaults ARE the paper's recipe (reference §7.1, §8: Faster-FPN, ResNet-50 from
ImageNet, 2 GPUs × 1 image, 0.005 per image, 12 epochs); a params folder holds a `base.yaml` with
what its rows share and one short file per row holding only what differs (`base: base.yaml`), and
`tinysm config ROW.yaml` prints the resolved config. Learning rates are per image, as in the
engine's `TrainConfig`: the optimiser's rate is the per-image rate times the global batch
(batch_size × gpus), so a row keeps its recipe on any number of GPUs.

The paper's rows (reference §8) live here too: `PAPER_ROWS` is the one source of the published numbers,
`TINYBENCHMARK_ROWS` of the older max_det-200 ones (the only plain-COCO row).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Literal, Mapping, NamedTuple

from tinysm.config import InvalidValue, config_from_mapping, load_config
from tinysm.engine.distributed import device_name_problem
from tinysm.models.build import DETECTORS
from tinysm.paths import resolve
from tinysm.scale_match import METHODS


class PaperRow(NamedTuple):
    """One row of the seed's table (reference §8)."""

    detector: str
    pretraining: str
    ap50_tiny: float  # published AP50_tiny, max_det 1000


# reference §8, in the seed's grouping: Faster-FPN rows, then Adaptive RetinaNet-c rows.
PAPER_ROWS: dict[str, PaperRow] = {
    "exp1.2": PaperRow("Faster-FPN", "ImageNet", 49.81),
    "exp4.0": PaperRow("Faster-FPN", "COCO + SM, 8×2", 50.85),
    "exp4.1": PaperRow("Faster-FPN", "COCO + SM, 4×2", 50.30),
    "exp4.2": PaperRow("Faster-FPN", "COCO + MSM, 4×2", 50.18),
    "exp2.3": PaperRow("Adap RetinaNet-c", "ImageNet", 45.22),
    "exp5.1": PaperRow("Adap RetinaNet-c", "COCO + SM, 4×2", 51.78),
    "exp5.2": PaperRow("Adap RetinaNet-c", "COCO + MSM, 4×2", 50.00),
}
# COCO pre-training without size matching ("plain"), then every size-matching method by name.
PRETRAININGS = ("none", "plain", *METHODS)
# reference §8, "Older numbers": TinyBenchmark's README, AP50_tiny at 200 detections per frame (not
# comparable with PAPER_ROWS' 1000), by (detector, pretrain) in this config's vocabulary ("none": the
# ImageNet backbone without COCO). The only published COCO pre-training without size matching ("plain").
TINYBENCHMARK_ROWS: dict[tuple[str, str], float] = {
    ("faster_fpn", "none"): 47.35, ("faster_fpn", "plain"): 47.11,
    ("faster_fpn", "sm"): 51.33, ("faster_fpn", "msm"): 50.89,
    ("adaptive_retinanet", "none"): 46.56, ("adaptive_retinanet", "sm"): 48.48,
    ("adaptive_retinanet", "msm"): 49.59,
}


@dataclass
class ExperimentConfig:
    """Pre-training (optional) -> fine-tuning on TinyPerson tiles -> tiled evaluation (reference §2, §4–§8).

    Paths are relative to the repository root (a papermill kernel starts in the caller's cwd).
    Learning rates are per image; batch sizes are per GPU.
    """

    experiment: str                              # the paper's row, e.g. "exp4.0"; names the run folder
    detector: str = "faster_fpn"                 # a key of tinysm.models.DETECTORS
    pretrain: str = "none"                       # one of PRETRAININGS: COCO pre-training, plain or size-matched
    data_root: str = "data"                      # holds tiny_set/ and coco/ as in reference §1.1
    runs_dir: str = "runs"                       # the run is written to <runs_dir>/<experiment>/
    backbone: str = "resnet50"
    fpn_channels: int = 256                      # reference §7; fewer make CPU runs affordable
    detector_options: dict[str, Any] = field(default_factory=dict)  # more settings of the detector (build_detector)
    backbone_weights: str | None = "imagenet"    # "imagenet" (cached or downloaded), a local file, or null
    device: str = "auto"                         # "auto": cuda when available, else cpu
    gpus: int = 2                                # fine-tuning GPUs; > 1: the stage runs under torchrun
    amp: bool = False                            # fp16 autocast on CUDA: a speed option; reference §7.1 is fp32
    seed: int = 0
    workers: int = 4
    log_every: int = 20                          # iterations between training-log records
    # Fine-tuning on TinyPerson training tiles (reference §8: 0.005 per image, 12 epochs, steps 8 and 11).
    epochs: int = 12
    lr_per_image: float = 0.005
    batch_size: int = 1
    milestones: list[int] = field(default_factory=lambda: [8, 11])  # LR x0.1 after these epochs
    warmup_iters: int = 500
    max_iters: int | None = None                 # stop early (CPU runs); the schedule is unchanged
    max_train_images: int | None = None          # null: every training tile
    # Gradient clipping (max-norm) of both stages; null: the reference's, i.e. the detector's own
    # when fine-tuning ("-c": 1.0) and none in pre-training. A stabiliser for training from scratch.
    clip_grad_norm: float | None = None
    # Fine-tuning after pre-training: "reference" freezes the stem, layer1 and BatchNorm (reference §7);
    # "none" trains them all, as training from scratch does: an ablation (README "The CPU study").
    finetune_backbone_freezing: Literal["reference", "none"] = "reference"
    # Pre-training on COCO (reference §8: LR 0.01 for 2 GPUs × 4 images), ignored when pretrain == "none".
    pretrain_epochs: int = 12
    pretrain_lr_per_image: float = 0.00125
    pretrain_batch_size: int = 4
    pretrain_gpus: int = 2
    pretrain_milestones: list[int] = field(default_factory=lambda: [8, 11])
    pretrain_max_iters: int | None = None
    pretrain_max_images: int | None = None       # null: every COCO training image
    # Scale Match (reference §3–§5): the values of every published run.
    sm_bins: int = 100
    sm_scale_range: list[float] = field(default_factory=lambda: [0.1, 1.0])
    sm_default_scale: float = 0.25
    sm_resize: Literal["reference", "antialiased"] = "reference"  # the reference's pixels (§4 "Pixels")
    # Evaluation (reference §6).
    max_test_images: int | None = None           # null: every test image
    max_dets: int = 1000
    overwrite: bool = False                      # replace a finished run of the same name

    def __post_init__(self) -> None:
        if not self.experiment or "/" in self.experiment:
            raise InvalidValue(f"'experiment' must be a plain folder name, got {self.experiment!r}")
        if self.detector not in DETECTORS:
            raise InvalidValue(f"'detector' must be one of {list(DETECTORS)}, got {self.detector!r}")
        if device_name_problem(self.device):
            raise InvalidValue(f"'device' {device_name_problem(self.device)}")
        if self.pretrain not in PRETRAININGS:
            raise InvalidValue(f"'pretrain' must be one of {list(PRETRAININGS)}, got {self.pretrain!r}")
        for key in ("gpus", "pretrain_gpus", "epochs", "batch_size", "pretrain_epochs", "pretrain_batch_size", "sm_bins",
                    "fpn_channels", "log_every"):
            if getattr(self, key) < 1:
                raise InvalidValue(f"'{key}' must be at least 1, got {getattr(self, key)}")
        for key in ("lr_per_image", "pretrain_lr_per_image"):
            if getattr(self, key) <= 0:
                raise InvalidValue(f"'{key}' must be positive, got {getattr(self, key)}")
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

    @property
    def optimizer_lr(self) -> float:
        """The fine-tuning stage's SGD rate: per image × the global batch (reference §8: 0.01 on 2 GPUs)."""
        return self.lr_per_image * self.batch_size * self.gpus

    @property
    def pretrain_optimizer_lr(self) -> float:
        """The pre-training stage's SGD rate: per image × its global batch (reference §8: 0.01 on 2 GPUs × 4)."""
        return self.pretrain_lr_per_image * self.pretrain_batch_size * self.pretrain_gpus


def load_experiment_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> ExperimentConfig:
    """A params row file (with its `base:` chain) as a validated config; `experiment` defaults to the
    file's name, `overrides` go on top. Relative paths are relative to the repository root."""
    path = resolve(path)
    return load_config(ExperimentConfig, path, overrides, defaults={"experiment": path.stem})


@dataclass
class ExperimentNotebook:
    """The parameters of notebooks/experiment.ipynb: a params row file and overrides on top."""

    params: str = "params/cpu/faster_fpn-sm-s0.yaml"
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class ResultsConfig:
    """The parameters of notebooks/results.ipynb (paths relative to the repository root)."""

    runs_dir: str = "runs/cpu_study"  # holds <experiment>/metrics.json
    figures_dir: str = "figures"    # results_table.md, .csv and .png go here


@dataclass
class SizeDistributionConfig:
    """The parameters of notebooks/size_distribution.ipynb (paths relative to the repository root)."""

    target_annotations: str = "data/synthetic/tiny_set/mini_annotations/tiny_set_train_all_erase.json"
    source_annotations: str = "data/synthetic/coco/annotations/instances_train2017.json"
    bins: int = 100
    seed: int = 0
    output_dir: str = "figures"


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


def notebook_config(cls: type, namespace: Mapping[str, Any], before: Mapping[str, Any] | Collection[str],
                    where: str) -> Any:
    """The validated `cls` of a notebook's parameters cells (unknown keys and wrong types fail)."""
    return config_from_mapping(cls, parameters_from_namespace(namespace, before), where)


def experiment_config_from_notebook(namespace: Mapping[str, Any], before: Mapping[str, Any] | Collection[str],
                                    where: str = "notebooks/experiment.ipynb parameters") -> ExperimentConfig:
    """The experiment an experiment notebook's parameters name: its params file, overrides on top."""
    parameters = notebook_config(ExperimentNotebook, namespace, before, where)
    return load_experiment_config(parameters.params, parameters.overrides)
