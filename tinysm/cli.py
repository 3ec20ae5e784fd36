"""The `tinysm` command (also `python -m tinysm`): one subcommand per module in tinysm/commands/.

Each command module (its name with "_" for "-") defines `HELP` (one line), `configure(parser)` and `run(args) -> int`, and
imports its heavy dependencies inside `run`, so that `tinysm --help` stays fast.

`main` is the one error boundary (issue 12). Every expected failure, that is bad input (a malformed
file, a wrong config key or value) or the file system saying no (a missing file, permission denied,
a full disk, a folder where a file goes, a name too long), ends with one line
`tinysm <command>: error: <what, naming the file or key>` and exit code 2; a command reports its
own runtime failures (a non-finite loss) with exit code 1. Anything else is a bug and keeps its
traceback. Warnings of tinysm itself print as one line `tinysm <command>: warning: ...`.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import sys
import warnings
from typing import Any, Callable

# In the order `tinysm --help` lists them (the pipeline's order).
COMMANDS = ("synth", "tiles", "erase", "merge-coco", "sizes", "config", "train", "evaluate", "reproduce")
# A ValueError that carries a formatted traceback (torch's DataLoader re-raises a worker's failure
# so) is not a message about the input: it keeps its traceback.
_WORKER_TRACEBACK = "Traceback (most recent call last)"


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
    command = f"tinysm {args.command}"
    with warnings.catch_warnings():  # restores showwarning on the way out
        warnings.showwarning = _one_line_warnings(command, warnings.showwarning)
        try:
            refuse_nul_bytes(args)
            return int(args.handler(args) or 0)
        except (ValueError, OSError) as err:
            if isinstance(err, ValueError) and _WORKER_TRACEBACK in str(err):
                raise
            # Bad input is the user's to fix: one clear line, no traceback.
            print(f"{command}: error: {describe_error(err)}", file=sys.stderr)
            return 2


def describe_error(err: BaseException) -> str:
    """One line for an expected failure. An OSError from the system names its file(s) and the
    reason (`[Errno 28] ...` says less than `out.json: No space left on device (the disk is full)`)."""
    if isinstance(err, OSError) and err.strerror:
        files = " -> ".join(str(name) for name in (err.filename, err.filename2) if name is not None)
        reason = err.strerror + (" (the disk is full)" if err.errno == errno.ENOSPC else "")
        return f"{files}: {reason}" if files else reason
    text = str(err) or type(err).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def refuse_nul_bytes(args: argparse.Namespace) -> None:
    """A NUL byte cannot be in a path: say which argument holds one (the system's own error,
    "embedded null byte", names none). Reaches here through `main([...])` or a wrapper script."""
    for key, value in vars(args).items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, str) and "\0" in item:
                raise ValueError(f"argument {key}: {item!r} contains a NUL byte, which no path or name can hold")


def _one_line_warnings(command: str, fallback: Callable[..., Any]) -> Callable[..., None]:
    """A `warnings.showwarning` that prints tinysm's own warnings as one line on stderr and hands
    any other library's to `fallback` (file and line help there)."""
    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        if category.__module__.split(".")[0] == "tinysm":
            text = " ".join(str(message).split("\n"))
            print(f"{command}: warning: {text}", file=sys.stderr if file is None else file)
        else:
            fallback(message, category, filename, lineno, file, line)
    return show


if __name__ == "__main__":
    sys.exit(main())
