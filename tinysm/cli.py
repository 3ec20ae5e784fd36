"""The `tinysm` command (also `python -m tinysm`): one subcommand per module in tinysm/commands/.

Each command module (its name with "_" for "-") defines `HELP` (one line), `configure(parser)` and `run(args) -> int`, and
imports its heavy dependencies inside `run`, so that `tinysm --help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from tinysm.data.annotations import AnnotationError

# In the order `tinysm --help` lists them (the pipeline's order).
COMMANDS = ("synth", "tiles", "erase", "merge-coco", "sizes", "config", "train", "evaluate", "reproduce")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinysm", description="Scale Match for tiny person detection: data, scale match, "
        "detectors, TinyPerson evaluation and the paper's experiments.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"tinysm.commands.{name.replace('-', '_')}")
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.configure(sub)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (AnnotationError, FileNotFoundError, FileExistsError, ValueError) as err:
        # Bad input is the user's to fix: one clear line, no traceback.
        print(f"tinysm {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
