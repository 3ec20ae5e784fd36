"""The `tinysm` entry point: every subcommand is listed and has --help (issue: one CLI)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tinysm.cli import COMMANDS, build_parser


def available_commands() -> list[str]:
    return list(build_parser()._subparsers._group_actions[0].choices)


def test_help_lists_every_available_command():
    result = subprocess.run([sys.executable, "-m", "tinysm", "--help"], capture_output=True, text=True, check=True)
    for name in available_commands():
        assert name in result.stdout
    assert set(available_commands()) <= set(COMMANDS) and {"tiles", "erase"} <= set(available_commands())


@pytest.mark.parametrize("name", COMMANDS)
def test_every_subcommand_has_help(name, capsys):
    if name not in available_commands():
        pytest.skip(f"{name} is not part of this build")
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([name, "--help"])
    assert info.value.code == 0
    assert f"usage: tinysm {name}" in capsys.readouterr().out
