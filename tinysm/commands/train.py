"""`tinysm train CONFIG.yaml`: run one training stage (SPEC §8); under torchrun on several GPUs."""
from __future__ import annotations

import argparse
import os
import sys

import yaml

HELP = "train one stage (pre-training or fine-tuning) from a TrainConfig YAML (SPEC §8)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="TrainConfig YAML (keys: see tinysm/engine/config.py)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="override one key; VALUE is read as YAML (e.g. --set max_iters=100)")
    parser.epilog = "several GPUs: torchrun --nproc_per_node N -m tinysm train CONFIG.yaml"


def parse_overrides(pairs: list[str]) -> dict[str, object]:
    """KEY=VALUE strings to a mapping, each VALUE parsed as YAML (numbers, null, lists, paths)."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {pair!r}")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def run(args: argparse.Namespace) -> int:
    from tinysm.engine.config import load_train_config
    from tinysm.engine.train import NonFiniteLossError, train

    config = load_train_config(args.config, parse_overrides(args.overrides))
    try:
        final = train(config)
    except NonFiniteLossError as err:
        print(f"tinysm train: stopped: {err}", file=sys.stderr)
        return 1
    if int(os.environ.get("RANK", "0")) == 0:  # torchrun: one report, from rank 0
        print(f"final checkpoint: {final}\nmetrics log: {config.paths.metrics}")
    return 0
