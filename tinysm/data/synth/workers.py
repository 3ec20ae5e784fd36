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


def map_in_order(fn: Callable[[Job], Result], jobs: Sequence[Job], workers: int, desc: str) -> list[Result]:
    """`[fn(job) for job in jobs]` with a progress bar, on `workers` processes when more than one."""
    if workers <= 1 or len(jobs) <= 1:
        return [fn(job) for job in tqdm(jobs, desc=desc, unit="img")]
    # spawn, not fork: the caller may hold torch's thread pools, which do not survive a fork.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(tqdm(pool.map(fn, jobs, chunksize=4), total=len(jobs), desc=desc, unit="img"))
