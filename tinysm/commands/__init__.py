"""Subcommands of the `tinysm` CLI, one module each (see tinysm/cli.py for the convention)."""
