"""Multi-process training under `torchrun` (DistributedDataParallel), and the one-process case.

`torchrun --nproc_per_node N -m tinysm train CONFIG.yaml` sets RANK / WORLD_SIZE / LOCAL_RANK;
`setup_distributed` reads them. Without them everything here degrades to one process, so the
training loop has a single code path. Only rank 0 logs, writes checkpoints and evaluates.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset, DistributedSampler

EVALUATION_TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in the run and the device it trains on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_process_group: bool = False  # True when setup_distributed created it (and must destroy it)

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs, checkpoints and evaluates."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


DEVICE_NAMES = ("auto", "cpu", "cuda", "cuda:N")


def device_name_problem(name: str) -> str | None:
    """Why `name` is not a device a config may ask for, or None; availability is not checked here,
    so a GPU config can be written and printed on a machine without one."""
    kind, sep, index = name.partition(":")
    if name in ("auto", "cpu", "cuda") or (kind == "cuda" and sep and index.isdigit()):
        return None
    return f"must be one of {', '.join(DEVICE_NAMES)}, got {name!r}"


def available_devices() -> str:
    """What this machine offers, in the words a config uses ("cpu, cuda:0, cuda:1")."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ", ".join(["cpu", *(f"cuda:{index}" for index in range(gpus))])


def resolve_device(name: str, local_rank: int = 0, key: str = "device") -> torch.device:
    """"auto" -> this process's GPU when CUDA is available, else the CPU; anything else as given.

    A name that is no device ("gpu"), or a GPU this machine does not have, is a ValueError naming
    `key` and what is available, before torch fails deep inside with a longer story."""
    problem = device_name_problem(name)
    if problem:
        raise ValueError(f"'{key}' {problem} (available here: {available_devices()})")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"'{key}' is {name!r}, but CUDA is not available here (available here: {available_devices()})")
    if device.type == "cuda" and device.index >= torch.cuda.device_count():
        raise ValueError(f"'{key}' is {name!r}, but this machine has no GPU {device.index} "
                         f"(available here: {available_devices()})")
    return device


def setup_distributed(device: str = "auto") -> DistributedContext:
    """The context from torchrun's environment; joins (or creates) the default process group."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    target = resolve_device(device, local_rank)
    if target.type == "cuda":
        torch.cuda.set_device(target)
    owns = False
    if world_size > 1 and not dist.is_initialized():
        # NCCL between GPUs; gloo lets the same entry point run on CPUs (tests, laptops). The long
        # timeout: the other ranks wait at a barrier while rank 0 evaluates on the whole test set.
        dist.init_process_group("nccl" if target.type == "cuda" else "gloo", timeout=EVALUATION_TIMEOUT)
        owns = True
    return DistributedContext(rank, world_size, local_rank, target, owns)


def cleanup_distributed(context: DistributedContext) -> None:
    """Leave the process group if `setup_distributed` created it."""
    if context.owns_process_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: DistributedContext) -> None:
    """Wait until every process gets here (nothing to wait for with one process)."""
    if context.distributed:
        dist.barrier()


def wrap_model(model: torch.nn.Module, context: DistributedContext) -> torch.nn.Module:
    """DistributedDataParallel around `model` with several processes, `model` itself otherwise."""
    if not context.distributed:
        return model
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def mean_across_processes(values: dict[str, float], context: DistributedContext) -> dict[str, float]:
    """Each value averaged over the processes (the loss of the global batch, for logging)."""
    if not context.distributed or not values:
        return values
    stacked = torch.tensor(list(values.values()), dtype=torch.float64, device=context.device)
    dist.all_reduce(stacked)
    return dict(zip(values, (stacked / context.world_size).tolist()))


def gather_objects(obj: Any, context: DistributedContext) -> list[Any]:
    """`obj` of every process, in rank order (e.g. RNG states for an exact resume)."""
    if not context.distributed:
        return [obj]
    gathered: list[Any] = [None] * context.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


class ResumableSampler(DistributedSampler):
    """torch's DistributedSampler (seeded shuffle per epoch, one shard per rank) that can skip the
    first samples of its shard: a run resumed mid-epoch sees exactly the batches it had not seen.

    With one process the shard is the whole permutation, so a global batch of the 1-process run
    is the union of the ranks' batches at the same step.
    """

    def __init__(self, dataset: Dataset, context: DistributedContext, seed: int):
        super().__init__(dataset, num_replicas=context.world_size, rank=context.rank, shuffle=True,
                         seed=seed, drop_last=False)
        self.start = 0

    def set_position(self, epoch: int, start: int = 0) -> None:
        """Iterate epoch `epoch`'s shard from its `start`-th sample on."""
        self.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[int]:
        return iter(list(super().__iter__())[self.start:])

    def __len__(self) -> int:
        return self.num_samples - self.start
