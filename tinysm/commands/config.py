"""`tinysm config PARAMS.yaml`: the experiment a params row file resolves to, in full."""
from __future__ import annotations

import argparse

from tinysm.commands import add_set_option, parse_overrides

HELP = "print the full experiment config a params file (with its base) resolves to, as YAML"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("params", help="a params row file, e.g. params/paper/exp5.1.yaml")
    add_set_option(parser)


def run(args: argparse.Namespace) -> int:
    import yaml

    from tinysm.config import config_to_dict
    from tinysm.experiments.config import load_experiment_config

    config = load_experiment_config(args.params, parse_overrides(args.overrides))
    print(yaml.safe_dump(config_to_dict(config), sort_keys=False), end="")
    # What the optimiser sees: the per-image rate times the global batch of each stage (reference §8).
    print(f"# fine-tuning: SGD LR {config.optimizer_lr:g} = {config.lr_per_image:g} per image x "
          f"{config.batch_size} image(s) x {config.gpus} GPU(s)")
    if config.pretrain != "none":
        print(f"# pre-training: SGD LR {config.pretrain_optimizer_lr:g} = {config.pretrain_lr_per_image:g} per "
              f"image x {config.pretrain_batch_size} image(s) x {config.pretrain_gpus} GPU(s)")
    return 0
