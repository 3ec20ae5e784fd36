"""Paths relative to the repository root, whatever the caller's working directory.

A papermill kernel starts in the caller's cwd, so notebooks and params files name paths relative to
the repository root (where pyproject.toml lies) and resolve them here.
"""
from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The checkout tinysm is imported from (editable install), else `$TINYSM_ROOT`, else the cwd."""
    if "TINYSM_ROOT" in os.environ:
        return Path(os.environ["TINYSM_ROOT"]).resolve()
    here = Path(__file__).resolve().parents[1]
    return here if (here / "pyproject.toml").is_file() else Path.cwd().resolve()


def resolve(path: str | os.PathLike) -> Path:
    """`path` itself when absolute, else relative to the repository root."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else repo_root() / path
