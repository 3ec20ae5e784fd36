"""Atomic file writes: a temp file in the same folder, then a rename (docs/architecture.md, rules of the house).

An interrupted run therefore never leaves a half-written metrics file, annotation file or checkpoint.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import orjson


# `atomic_path`'s temporary files: "." + the target's name + "." + mkstemp's 8 random characters + ".tmp".
TEMPORARY_SUFFIX = ".tmp"
TEMPORARY_NAME = re.compile(r"\..+\.[a-z0-9_]{8}" + re.escape(TEMPORARY_SUFFIX))


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it replaces `path`, on error it is removed.

    A process killed in between (SIGKILL, power loss) leaves the temporary file behind; the next
    writer of the folder removes it with `remove_stray_temporaries`.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMPORARY_SUFFIX, dir=target.parent)
    os.close(fd)
    give_ordinary_mode(tmp)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno and (err.filename is None or str(err.filename) == tmp):
            # A full disk names no file, a failed rename the temporary one: name what was asked for.
            raise OSError(err.errno, err.strerror, str(target)) from err
        raise


def give_ordinary_mode(path: str | os.PathLike) -> None:
    """mkstemp creates a file 0600; give it the mode an ordinary open() would (0666 minus umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def remove_stray_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files `atomic_path` left in `folder` (not in its subfolders) when
    its writer was killed mid-write; returns them.

    Only the folder's lock holder may call this (`tinysm.locks`): a temporary file of a live
    writer is that writer's next file, and only the holder knows there is no other writer.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stray = sorted(p for p in folder.iterdir() if TEMPORARY_NAME.fullmatch(p.name) and p.is_file()
                   and not p.is_symlink())
    for path in stray:
        path.unlink(missing_ok=True)
    return stray


def refuse_input_as_output(output: str | os.PathLike, inputs: dict[str, str | os.PathLike | None]) -> None:
    """Raise FileExistsError when `output` is, after following symbolic links, one of the named
    `inputs` (name -> path; None entries are skipped): writing it would destroy that input."""
    target = Path(output).resolve()
    for name, path in inputs.items():
        if path is not None and Path(path).resolve() == target:
            raise FileExistsError(f"{output}: is the {name} ({path}); writing it would destroy that input, "
                                  "choose another output path")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent))


def parse_json(data: bytes) -> Any:
    """Parse JSON bytes: orjson (1.5-2x faster than the stdlib on COCO-size files), falling back to
    the stdlib, which also reads the NaN/Infinity tokens Python writes, so that the caller's
    validation can name the entry holding them; malformed input raises json.JSONDecodeError."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
