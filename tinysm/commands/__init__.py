"""Subcommands of the `tinysm` CLI, one module each (see tinysm/cli.py for the convention)."""
from __future__ import annotations

import argparse

import yaml


def add_set_option(parser: argparse.ArgumentParser) -> None:
    """`--set KEY=VALUE`, repeatable, into `args.overrides` (see `parse_overrides`)."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="override one key; VALUE is read as YAML (e.g. --set max_iters=100)")


def parse_overrides(pairs: list[str]) -> dict[str, object]:
    """KEY=VALUE strings to a mapping, each VALUE parsed as YAML (numbers, null, lists, paths)."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            overrides[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ValueError(f"--set {pair!r}: the value is not valid YAML ({' '.join(str(err).split())})") from None
    return overrides
