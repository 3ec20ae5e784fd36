"""ResNet + FPN backbones with the paper's freezing: stem, layer1 and every BatchNorm (reference §7).

Weights: "imagenet" (torchvision's IMAGENET1K_V1 enum, read from the torch hub cache or downloaded
once), a local file holding a torchvision ResNet state_dict, or None (random init).

Two conventions, chosen explicitly by the caller (never guessed from `weights`, as torchvision's
builders do, because a model that will receive pre-trained tensors later is built with None too):
- pre-trained (the default): reference §7's ImageNet fine-tuning rules, stem and layer1 frozen and every
  BatchNorm a `FrozenBatchNorm2d`;
- `trainable_backbone`: every stage trains and BatchNorm normalises with batch statistics. This is the
  rule when no pre-trained tensor ever reaches the model, since the rules above would freeze random
  values and leave a deep network with no normalisation at all (identity statistics), which trains
  unstably; the engine also offers it after pre-training, as an ablation (`backbone_freezing`).
"""
from __future__ import annotations

import hashlib
import urllib.error
from pathlib import Path
from typing import Literal

import torch
from torch import nn
from torchvision.models import ResNet, get_model, get_model_weights
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.ops import FrozenBatchNorm2d
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock, LastLevelMaxPool

from tinysm.models.components import AffineFrozenBatchNorm2d, LastLevelP6FromC5
from tinysm.models.initialisation import xavier_uniform_layers_
from tinysm.paths import resolve

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101")
TRAINABLE_STAGES = ("layer2", "layer3", "layer4")  # reference §7: stem (conv1, bn1) and layer1 frozen
RESNET_LAYERS = ("layer1", "layer2", "layer3", "layer4")  # C2..C5, strides 4..32


def load_resnet_weights(resnet: ResNet, name: str, weights: str | Path | None) -> None:
    """Fill `resnet` from "imagenet", a local state_dict file, or leave it as initialised (None)."""
    if weights is None:
        return
    if str(weights) == "imagenet":
        state, source = imagenet_state_dict(name), f"torchvision's ImageNet weights for {name}"
    else:
        state, source = local_state_dict(Path(weights)), str(weights)
    try:
        missing, unexpected = resnet.load_state_dict(state, strict=False)
    except RuntimeError as error:  # shape mismatch: the file is another architecture
        raise ValueError(f"{source}: does not fit a {name}: {str(error).splitlines()[-1].strip()}") from None
    # fc.* is the classifier, unused by a detector; a file without it is fine.
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise ValueError(f"{source}: not a {name} state_dict (missing {missing[:3]}, unexpected {unexpected[:3]})")


def check_backbone_weights(name: str, weights: str | Path | None) -> None:
    """Fail before any work when `weights` cannot be had: "imagenet" is fetched into the hub cache
    now (offline: one line saying what to download and where to put it), a file (relative to the
    repository root, like every path) must exist."""
    if weights is None:
        return
    if str(weights) == "imagenet":
        imagenet_weights_file(name)
    elif not resolve(weights).is_file():
        raise FileNotFoundError(f"backbone weights file not found: {weights}")


def imagenet_weights_file(name: str) -> Path:
    """torchvision's IMAGENET1K_V1 file of `name` in the torch hub cache, downloaded once if absent."""
    url = get_model_weights(name).IMAGENET1K_V1.url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    if not cached.is_file():
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(url, str(cached), hash_prefix=file_hash_prefix(cached), progress=True)
        except (urllib.error.URLError, OSError) as error:
            raise ValueError(
                f"backbone_weights='imagenet': cannot download {url} ({error}). Offline, fetch that file "
                f"elsewhere and either put it at {cached} or pass backbone_weights='/path/to/{cached.name}'"
            ) from None
    return cached


def imagenet_state_dict(name: str) -> dict[str, torch.Tensor]:
    """torchvision's IMAGENET1K_V1 weights of `name`, from the hub cache or downloaded once.

    Never unpickles code: the file is read with `weights_only=True` (torch's own
    `load_state_dict_from_url` would unpickle a planted cache file in full), and a cached file must
    match the SHA-256 prefix its name carries, as a download is checked.
    """
    cached = imagenet_weights_file(name)
    if not sha256_of(cached).startswith(file_hash_prefix(cached)):
        raise ValueError(f"{cached}: its SHA-256 does not start with the {file_hash_prefix(cached)!r} its name "
                         f"promises; it is not torchvision's file (delete it, then download it again)")
    return local_state_dict(cached)


def file_hash_prefix(path: Path) -> str:
    """The SHA-256 prefix in a torchvision weights file name: "resnet50-0676ba61.pth" -> "0676ba61"."""
    return path.stem.rsplit("-", 1)[-1]


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def local_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A ResNet state_dict from a file (bare, or under "state_dict"/"model")."""
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling errors come in many types; all mean "not a weights file"
        raise ValueError(f"{path}: cannot be read as a PyTorch weights file ({error})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: holds a {type(state).__name__}, not a state_dict")
    return state


def build_resnet_fpn(name: str, weights: str | Path | None, fpn_channels: int,
                     p6: Literal["maxpool_p5", "conv_c5"] = "maxpool_p5", trainable_backbone: bool = False,
                     bn_affine_trainable: bool = False) -> BackboneWithFPN:
    """ResNet C2..C5 + FPN P2..P6, stem/layer1/BatchNorm frozen (reference §7) unless `trainable_backbone`.

    P6 is a stride-2 subsample of P5 (Faster-FPN) or a 3×3 stride-2 conv on C5 (Adaptive RetinaNet).
    Every FPN conv starts Xavier-uniform (reference §7.1; see `tinysm.models.initialisation`).
    `bn_affine_trainable` (COCO pre-training, reference §7.1): BatchNorm statistics stay frozen but its
    weight and bias train in the trainable stages (layer2..4); no use with `trainable_backbone`, whose
    BatchNorm trains in full.
    """
    if name not in RESNETS:
        raise ValueError(f"backbone must be one of {RESNETS}, got {name!r}")
    if trainable_backbone and bn_affine_trainable:
        raise ValueError("bn_affine_trainable contradicts trainable_backbone "
                         "(whose BatchNorm trains statistics and all)")
    frozen = AffineFrozenBatchNorm2d if bn_affine_trainable else FrozenBatchNorm2d
    norm_layer = nn.BatchNorm2d if trainable_backbone else frozen
    resnet = get_model(name, weights=None, norm_layer=norm_layer)
    load_resnet_weights(resnet, name, weights)
    for parameter_name, parameter in resnet.named_parameters():
        parameter.requires_grad_(trainable_backbone or parameter_name.startswith(TRAINABLE_STAGES))
    channels = [block_out_channels(getattr(resnet, layer)) for layer in RESNET_LAYERS]
    if p6 == "maxpool_p5":
        extra_block: ExtraFPNBlock = LastLevelMaxPool()
    elif p6 == "conv_c5":
        extra_block = LastLevelP6FromC5(channels[-1], fpn_channels)
    else:
        raise ValueError(f"p6 must be 'maxpool_p5' or 'conv_c5', got {p6!r}")
    backbone = BackboneWithFPN(resnet, {layer: str(i) for i, layer in enumerate(RESNET_LAYERS)},
                               channels, fpn_channels, extra_blocks=extra_block)
    xavier_uniform_layers_(backbone.fpn)  # reference §7.1: the reference's FPN init, P6 conv included
    return backbone


def block_out_channels(layer: nn.Sequential) -> int:
    """Output channels of a ResNet stage (BasicBlock and Bottleneck alike)."""
    last = layer[-1]
    return (last.conv3 if hasattr(last, "conv3") else last.conv2).out_channels
