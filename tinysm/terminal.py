"""Progress bars that stay live in a terminal and short in a recorded notebook.

tqdm's `tqdm.auto` asks Jupyter for a widget (and warns "IProgress not found" without one), and
its text bar writes one line per refresh: papermill records each, hundreds per training stage.
`progress_bar` uses the text bar everywhere and, when stderr is no terminal (a notebook kernel, a
log file), refreshes it at most once a minute: a few lines per stage.
"""
from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

RECORDED_REFRESH_S = 60.0  # seconds between two redraws when the output is recorded, not watched


def progress_bar(*args: Any, **kwargs: Any) -> tqdm:
    """A `tqdm` bar (same arguments) that refreshes rarely when stderr is not a terminal."""
    if not sys.stderr.isatty():
        kwargs.setdefault("mininterval", RECORDED_REFRESH_S)
    return tqdm(*args, **kwargs)
