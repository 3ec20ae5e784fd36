"""The `tinysm` entry point: every subcommand is listed and has --help (issue: one CLI)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tinysm.cli import COMMANDS, build_parser


def test_help_lists_every_command_without_importing_torch():
    code = "import sys; from tinysm.cli import main; main(['--help'])"
    result = subprocess.run([sys.executable, "-c", code + "\n"], capture_output=True, text=True)
    assert result.returncode == 0
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("    ") and line.split()]
    assert [name for name in listed if name in COMMANDS] == list(COMMANDS)
    check = "import sys; from tinysm.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", check], capture_output=True, text=True).stdout.strip() == "False"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([name, "--help"])
    assert info.value.code == 0
    assert f"usage: tinysm {name}" in capsys.readouterr().out
