"""Subcommands of the `tinysm` CLI, one module each (see tinysm/cli.py for the convention)."""
from __future__ import annotations

import argparse
import errno
import os
from pathlib import Path

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


def check_output_file(path: str | os.PathLike | None, option: str) -> None:
    """Refuse, before any work, an output file path that is an existing folder or whose parent is a
    file: the write at the end would fail after the work was done. Raised as the OSError the write
    would give, naming the path, so the CLI prints it as one line."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"is a folder, but {option} takes a file name", str(path))
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, f"{parent} is a file, so {option} cannot go inside it", str(path))
            break


def check_output_folder(path: str | os.PathLike | None, option: str) -> None:
    """Refuse, before any work, an output folder path that is an existing file."""
    if path is not None and Path(path).exists() and not Path(path).is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"is a file, but {option} takes a folder", str(path))
