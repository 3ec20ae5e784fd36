"""`TrainConfig`: one training stage (pre-training or fine-tuning) as a typed, validated config.

The defaults are the fine-tuning recipe of reference §8. A params file is a flat YAML mapping of these
keys (`tinysm train CONFIG.yaml`); unknown keys and wrong types fail before any work starts.
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Collection, Literal, Mapping

from tinysm.config import ConfigError, InvalidValue, config_from_mapping, load_config
from tinysm.engine.distributed import device_name_problem
from tinysm.paths import resolve
from tinysm.models.build import DETECTORS
from tinysm.scale_match import METHODS

# The paths a stage reads, and what each must be: checked together before its folder is touched.
INPUTS: dict[str, str] = {"train_annotations": "file", "train_images": "folder", "init_from": "file",
                          "sm_target_annotations": "file", "eval_annotations": "file", "eval_images": "folder"}


@dataclass
class TrainConfig:
    """One stage: data, detector, the SGD recipe of reference §8 and how to run it.

    Relative paths are relative to the repository root (`tinysm.paths.resolve`).
    `batch_size` is per process; the learning rate is `lr_per_image` times the global batch
    (batch_size × number of processes), so the recipe holds on any number of GPUs.
    """

    detector: str                               # a key of tinysm.models.DETECTORS
    train_annotations: Path                     # COCO-format file (TinyPerson tiles or an external set)
    train_images: Path                          # image root its file_names are relative to
    out_dir: Path                               # checkpoints, metrics.jsonl, config.yaml
    # Detector (reference §7)
    backbone: str = "resnet50"
    backbone_weights: str | None = None         # "imagenet", a local .pth file, or None
    init_from: Path | None = None               # checkpoint to transfer matching tensors from (reference §8)
    detector_options: dict[str, Any] = field(default_factory=dict)  # extra build_detector overrides
    bn_affine_trainable: bool = False           # BatchNorm weight/bias train, statistics frozen (COCO pre-training, reference §7.1)
    # "reference": §7's frozen stem, layer1 and BatchNorm whenever pre-trained tensors are loaded (from
    # scratch everything trains); "none": everything trains even then, an ablation (README, CPU study)
    backbone_freezing: Literal["reference", "none"] = "reference"
    # Pre-training with a size-matching method of tinysm.scale_match.METHODS (reference §4, §5), e.g.
    # "sm" or "msm"; "none" for fine-tuning and the baseline
    scale_match: str = "none"
    sm_target_annotations: Path | None = None   # the target histogram's file (TinyPerson training set)
    sm_source_annotations: Path | None = None   # the sizes MSM maps (None: the training file; reference §8: train2017)
    sm_bins: int = 100
    sm_tail_rate: float | None = None           # None: 2 / sm_bins (reference §3)
    sm_scale_range: tuple[float, float] = (0.1, 1.0)
    sm_default_scale: float = 0.25
    sm_max_tries: int = 5
    sm_resize: Literal["reference", "antialiased"] = "reference"  # pixels as the reference (§4) or antialiased
    # Optimisation (reference §8)
    epochs: int = 12
    milestones: tuple[int, ...] = (8, 11)       # LR ×0.1 after these many epochs
    lr_per_image: float = 0.005
    batch_size: int = 1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_iters: int = 500
    warmup_ratio: float = 0.001
    clip_grad_norm: float | None = None         # 1.0 for the paper's "-c" runs
    amp: bool = False                           # fp16 autocast + GradScaler on CUDA: a speed option (reference §7.1: fp32)
    max_iters: int | None = None                # stop early (short runs); the schedule is unchanged
    max_images: int | None = None               # train on the first N images only (quick runs)
    # Running
    device: str = "auto"                        # "auto": cuda when available, else cpu
    workers: int = 2
    seed: int = 0
    log_every: int = 20                         # iterations between metrics records
    checkpoint_every: int | None = None         # iterations between checkpoints (also every epoch end)
    eval_every: int | None = None               # epochs between evaluations (also after the last)
    eval_annotations: Path | None = None        # full-image test file, evaluated with tiled inference
    eval_images: Path | None = None

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_size", "sm_bins", "sm_max_tries", "log_every"):
            _require(getattr(self, key) >= 1, key, "must be at least 1", getattr(self, key))
        for key in ("max_iters", "max_images", "checkpoint_every", "eval_every", "clip_grad_norm"):
            value = getattr(self, key)
            _require(value is None or value > 0, key, "must be positive or null", value)
        for key in ("lr_per_image", "sm_default_scale"):
            _require(getattr(self, key) > 0, key, "must be positive", getattr(self, key))
        _require(self.warmup_iters >= 0 and self.workers >= 0, "warmup_iters/workers", "must be >= 0",
                 (self.warmup_iters, self.workers))
        _require(0 < self.warmup_ratio <= 1, "warmup_ratio", "must be in (0, 1]", self.warmup_ratio)
        _require(list(self.milestones) == sorted(set(self.milestones))
                 and all(0 < m <= self.epochs for m in self.milestones),
                 "milestones", f"must be increasing epochs in 1..epochs={self.epochs}", list(self.milestones))
        _require(self.detector in DETECTORS, "detector", f"must be one of {list(DETECTORS)}", self.detector)
        if device_name_problem(self.device):
            raise InvalidValue(f"'device' {device_name_problem(self.device)}")
        _require(not (self.bn_affine_trainable and self.trainable_backbone), "bn_affine_trainable",
                 "needs pre-trained weights (backbone_weights or init_from) and backbone_freezing 'reference'; "
                 "otherwise all of BatchNorm trains", None)
        methods = ("none", *METHODS)
        _require(self.scale_match in methods, "scale_match", f"must be one of {list(methods)}", self.scale_match)
        _require(self.scale_match == "none" or self.sm_target_annotations is not None,
                 "sm_target_annotations", f"is required with scale_match={self.scale_match!r}", None)
        _require(self.eval_every is None or self.eval_annotations is not None,
                 "eval_annotations", "is required with eval_every", None)
        _require((self.eval_annotations is None) == (self.eval_images is None),
                 "eval_images", "and eval_annotations go together", self.eval_images)
        # Checked here, not when the detector is built: by then the stage's folder records this config.
        try:
            config_from_mapping(DETECTORS[self.detector].settings, self.detector_options, "")
        except ConfigError as err:
            problem = str(err).removeprefix(": ")
            raise InvalidValue(f"'detector_options' do not fit {self.detector!r}: {problem}") from None

    @property
    def trainable_backbone(self) -> bool:
        """Trainable BatchNorm and no frozen stage (see `builds_trainable_backbone`)."""
        return builds_trainable_backbone(self.backbone_weights, self.init_from, self.backbone_freezing)

    @property
    def paths(self) -> "RunPaths":
        """Where this stage writes (absolute)."""
        return RunPaths(resolve(self.out_dir))


@dataclass(frozen=True)
class RunPaths:
    """The files of one stage's `out_dir`."""

    out_dir: Path

    @property
    def config(self) -> Path:
        return self.out_dir / "config.yaml"

    @property
    def last_checkpoint(self) -> Path:
        """Rewritten during training; a resumed run starts from it."""
        return self.out_dir / "checkpoint_last.pt"

    @property
    def final_checkpoint(self) -> Path:
        """Written once, when the stage has finished; `train` returns it."""
        return self.out_dir / "model_final.pt"

    @property
    def metrics(self) -> Path:
        """JSON lines: one training record every `log_every` iterations, one per evaluation."""
        return self.out_dir / "metrics.jsonl"

    @property
    def finished(self) -> Path:
        """Written atomically after `final_checkpoint`, with its size and SHA-256: the stage has
        finished when this file describes the final checkpoint that is there (`engine/stage_folder`)."""
        return self.out_dir / "finished.json"


def missing_inputs(config: TrainConfig, skip: Collection[str] = ()) -> list[str]:
    """'key path (what is wrong)' for every input path of `config` (`INPUTS`) that is not there;
    `skip` names keys not to check (e.g. `init_from` of a stage whose predecessor has not run yet)."""
    problems = []
    for key, kind in INPUTS.items():
        value = getattr(config, key)
        if value is None or key in skip:
            continue
        path = resolve(value)
        if kind == "file" and not path.is_file():
            problems.append(f"{key} {path} ({'a folder, not a file' if path.is_dir() else 'no such file'})")
        elif kind == "folder" and not path.is_dir():
            problems.append(f"{key} {path} ({'a file, not a folder' if path.exists() else 'no such folder'})")
    return problems


def check_inputs(config: TrainConfig, skip: Collection[str] = (), where: str | None = None) -> None:
    """FileNotFoundError naming every missing input of `config` in one line (see `missing_inputs`)."""
    problems = missing_inputs(config, skip)
    if problems:
        raise FileNotFoundError(f"{where or config.out_dir}: input(s) not found, nothing was written: "
                                + "; ".join(problems))


def builds_trainable_backbone(backbone_weights: str | None, init_from: Path | str | None,
                              backbone_freezing: str) -> bool:
    """Whether a stage's detector is built with trainable BatchNorm and no frozen stage
    (`tinysm.models.backbone`): when it loads neither backbone weights nor a pre-trained checkpoint
    (reference §7's freezing would fix random values and leave no normalisation), or when
    `backbone_freezing` is "none" (the ablation); otherwise reference §7's ImageNet conventions hold."""
    from_scratch = backbone_weights is None and init_from is None
    return from_scratch or backbone_freezing == "none"


def recorded_with_defaults(recorded: Mapping[str, Any]) -> dict[str, Any]:
    """A config recorded by an earlier run (config.yaml, a checkpoint's "config"), with every key
    added to `TrainConfig` since then set to its default: the value that run had."""
    defaults = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
    return {**defaults, **recorded}


def _require(ok: bool, key: str, problem: str, value: Any) -> None:
    if not ok:
        raise InvalidValue(f"'{key}' {problem}" + ("" if value is None else f", got {value!r}"))


def train_config_from_mapping(values: Mapping[str, Any], where: str = "<train config>") -> TrainConfig:
    """A validated `TrainConfig` from a flat mapping (e.g. built by tinysm.experiments.run)."""
    return config_from_mapping(TrainConfig, values, where)


def load_train_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """A validated `TrainConfig` from a YAML file, with optional overrides on top."""
    return load_config(TrainConfig, path, overrides)
