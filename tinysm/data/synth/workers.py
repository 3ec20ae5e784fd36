"""Seeds and process pools for the generator: identical bytes whether run serially or in parallel."""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Sequence, TypeVar

import numpy as np
from tqdm import tqdm

Job = TypeVar("Job")
Result = TypeVar("Result")

# One random stream per (seed, dataset split, image): an image's pixels and boxes depend on nothing
# else, so the order or the process an image is drawn in cannot change it.
STREAMS = {"tiny_train": 0, "tiny_test": 1, "coco_train": 2, "coco_val": 3}
SPLIT_LEVEL = 2**32 - 1  # the index of a split's own stream (role assignment), never an image index


def image_rng(seed: int, stream: str, index: int) -> np.random.Generator:
    """The generator of image `index` of `stream` (see STREAMS) for the dataset `seed`."""
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    return np.random.default_rng(np.random.SeedSequence([seed, STREAMS[stream], index]))


class FramePool:
    """Maps jobs in order on `workers` processes, or inline for one; use one pool for a whole dataset.

    Spawned workers start from scratch (imports included), so starting them once rather than once
    per split saves seconds. spawn, not fork: the caller may hold torch's thread pools, which do
    not survive a fork.
    """

    def __init__(self, workers: int = 2):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> "FramePool":
        if self.workers > 1:
            context = multiprocessing.get_context("spawn")
            self._executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=context)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)
            self._executor = None

    def map(self, fn: Callable[[Job], Result], jobs: Sequence[Job], desc: str) -> list[Result]:
        """`[fn(job) for job in jobs]` with a progress bar."""
        if self._executor is None or len(jobs) <= 1:
            return [fn(job) for job in tqdm(jobs, desc=desc, unit="img")]
        return list(tqdm(self._executor.map(fn, jobs, chunksize=4), total=len(jobs), desc=desc, unit="img"))
