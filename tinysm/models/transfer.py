"""Weight transfer between detectors of different class sets (reference §8).

Every checkpoint tensor whose name and shape match the model is loaded; the class-specific layers
(Faster: class score and box regression; RetinaNet: classification logits) differ in shape when
the class count changes and so keep their fresh initialisation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

StateDict = Mapping[str, torch.Tensor]


@dataclass
class TransferReport:
    """What `load_matching_weights` did, tensor by tensor."""

    source: str
    loaded: list[str] = field(default_factory=list)  # copied into the model
    skipped: dict[str, str] = field(default_factory=dict)  # checkpoint name -> why it was not used
    missing: list[str] = field(default_factory=list)  # model tensors the checkpoint did not fill

    def summary(self) -> str:
        """A few lines for logs and notebooks."""
        lines = [f"{self.source}: loaded {len(self.loaded)} tensors, skipped {len(self.skipped)}, "
                 f"missing {len(self.missing)}"]
        details = [f"  skipped {name}: {why}" for name, why in self.skipped.items()]
        details += [f"  missing {name} (kept its initialisation)" for name in self.missing]
        shown = details[:SUMMARY_DETAILS]
        if len(details) > len(shown):
            shown.append(f"  ... and {len(details) - len(shown)} more (TransferReport.skipped, .missing)")
        return "\n".join(lines + shown)


SUMMARY_DETAILS = 6  # the lines of skipped and missing tensors a summary shows; the report keeps all


def read_state_dict(checkpoint: str | Path | Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], str]:
    """The state_dict of a checkpoint (path or mapping; bare or under "model") and its name."""
    if isinstance(checkpoint, Mapping):
        data, source = checkpoint, "<state_dict>"
    else:
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint not found: {path}")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # unpickling fails in many types; all mean "not a checkpoint"
            raise ValueError(f"{path}: cannot be read as a PyTorch checkpoint ({error})") from None
        source = str(path)
    if isinstance(data, Mapping) and isinstance(data.get("model"), Mapping):
        data = data["model"]
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise ValueError(f"{source}: neither a state_dict nor a checkpoint with one under 'model'")
    state = dict(data)
    # A state_dict saved from a DistributedDataParallel wrapper prefixes every name with "module.".
    if state and all(name.startswith("module.") for name in state):
        state = {name.removeprefix("module."): tensor for name, tensor in state.items()}
    return state, source


def load_matching_weights(model: nn.Module, checkpoint: str | Path | Mapping[str, Any]) -> TransferReport:
    """Load every checkpoint tensor whose name and shape match `model`'s; report the rest (reference §8)."""
    state, source = read_state_dict(checkpoint)
    own = model.state_dict()
    report = TransferReport(source)
    matching = {}
    for name, tensor in state.items():
        if name not in own:
            report.skipped[name] = "not in the model"
        elif tensor.shape != own[name].shape:
            report.skipped[name] = f"shape {tuple(tensor.shape)} in the checkpoint, {tuple(own[name].shape)} in the model"
        else:
            matching[name] = tensor
    if not matching:
        raise ValueError(f"{source}: no tensor matches the model by name and shape (another architecture?)")
    model.load_state_dict(matching, strict=False)
    report.loaded = list(matching)
    report.missing = [name for name in own if name not in matching]
    return report
