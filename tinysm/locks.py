"""One writer per folder (docs/architecture.md, rules of the house): an advisory `flock` on a lock file.

`fcntl.flock` rather than an exclusively created file: the kernel releases the lock when its holder
closes the file or dies, however it dies, so a crashed run never leaves a stale lock for someone to
delete by hand. Releasing leaves the lock file in place (were it deleted, a process that opened it
before and one that creates a new one could both hold "the" lock); it holds one line naming the
holder, which a refused process quotes. Only clearing a whole folder (`overwrite`) removes it,
with the lock held.

Two ways of holding a folder:
- `lock_folder`: one lock for one piece of work (a training stage), released by `release()` or at
  exit of a `with` block; a second `lock_folder` on the same folder is refused even within the same
  process, so two threads cannot train one stage either.
- `hold_folder`: a lock kept by the process until `release_folder` or the process exits, and
  re-entrant for that process (its threads share it). An experiment's run folder is held this way:
  its notebook claims it in one cell (`start_run`) and writes in later ones; a cell run again in the
  same kernel finds the folder already its own, another kernel or command is refused.
"""
from __future__ import annotations

import datetime
import fcntl
import os
import socket
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

LOCK_NAME = ".tinysm.lock"  # hidden, so that it never looks like a record of the run


class FolderInUse(FileExistsError):
    """Another process (or another piece of work in this one) is writing the folder.

    A FileExistsError, so that commands report it as the user's to resolve: one line, no traceback.
    """


class FolderLock:
    """A held lock on `folder`; `release()` (or the end of a `with` block) gives it back."""

    def __init__(self, folder: Path, fd: int):
        self.folder = folder
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Give the folder back; a second call does nothing. Unlocked explicitly before closing:
        a fork()ed child (a DataLoader worker) shares the descriptor, and closing ours alone would
        leave the folder locked until that child exits."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def __enter__(self) -> "FolderLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def describe_holder(what: str) -> str:
    """The line a refused process reads: who holds the folder, doing what, since when."""
    since = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return f"pid {os.getpid()} on {socket.gethostname()} ({what}) since {since}"


def lock_folder(folder: str | os.PathLike, what: str) -> FolderLock:
    """Lock `folder` (created if needed) for this piece of work, or raise `FolderInUse` at once
    naming the folder and its holder. `what` says what the holder does, e.g. "tinysm train"."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # os.open's descriptors are not inherited across exec (PEP 446): a papermill kernel or torchrun
    # started by the holder does not keep the lock alive after the holder has gone.
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_holder(fd)
        os.close(fd)
        raise FolderInUse(f"{folder} is in use by {holder}; wait until it ends or stop it, then run "
                          "this again") from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, (describe_holder(what) + "\n").encode(), 0)
    return FolderLock(folder, fd)


def _read_holder(fd: int) -> str:
    """The holder's first line; while the holder has not written it yet, only 'another process'."""
    try:
        text = os.pread(fd, 4096, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text.splitlines()[0] if text else "another process"


_held: dict[Path, FolderLock] = {}
_held_guard = threading.Lock()


def _key(folder: str | os.PathLike) -> Path:
    return Path(folder).resolve()


def hold_folder(folder: str | os.PathLike, what: str) -> FolderLock:
    """Hold `folder` for this process until `release_folder` (or exit); returns the lock this
    process already holds when it does."""
    key = _key(folder)
    with _held_guard:
        lock = _held.get(key)
        if lock is None or not lock.held:
            lock = _held[key] = lock_folder(folder, what)
        return lock


def holds_folder(folder: str | os.PathLike) -> bool:
    """Whether this process holds `folder` through `hold_folder`."""
    lock = _held.get(_key(folder))
    return lock is not None and lock.held


def release_folder(folder: str | os.PathLike) -> None:
    """Give back a folder held with `hold_folder` (nothing when this process does not hold it)."""
    with _held_guard:
        lock = _held.pop(_key(folder), None)
    if lock is not None:
        lock.release()


@contextmanager
def holding_folder(folder: str | os.PathLike, what: str) -> Iterator[FolderLock]:
    """`hold_folder` for the duration of the block; a folder this process held before stays held."""
    held_before = holds_folder(folder)
    lock = hold_folder(folder, what)
    try:
        yield lock
    finally:
        if not held_before:
            release_folder(folder)
