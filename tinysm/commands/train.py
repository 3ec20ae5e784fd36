"""`tinysm train CONFIG.yaml`: run one training stage (reference §8); under torchrun on several GPUs."""
from __future__ import annotations

import argparse
import os
import sys

from tinysm.commands import add_set_option, parse_overrides

HELP = "train one stage (pre-training or fine-tuning) from a TrainConfig YAML (docs/reference.md §8)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="TrainConfig YAML (keys: see tinysm/engine/config.py)")
    add_set_option(parser)
    parser.epilog = "several GPUs: torchrun --nproc_per_node N -m tinysm train CONFIG.yaml"


def run(args: argparse.Namespace) -> int:
    from tinysm.engine.config import load_train_config
    from tinysm.engine.stage_folder import DamagedStage
    from tinysm.engine.train import NonFiniteLossError, train
    from tinysm.locks import FolderInUse

    config = load_train_config(args.config, parse_overrides(args.overrides))
    main_process = int(os.environ.get("RANK", "0")) == 0  # torchrun: one report, from rank 0
    try:
        final = train(config)
    except NonFiniteLossError as err:
        print(f"tinysm train: stopped: {err}", file=sys.stderr)
        return 1
    except (FolderInUse, DamagedStage) as err:  # every rank stops on these; one line says why
        if main_process:
            print(f"tinysm train: error: {err}", file=sys.stderr)
        return 2
    if main_process:
        print(f"final checkpoint: {final}\nmetrics log: {config.paths.metrics}")
    return 0
