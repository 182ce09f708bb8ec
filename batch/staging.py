"""The staging folder ``DIR/.batch-partial/``: which run owns what, and the clean-up of dead runs.

Workers write a video's files under ``<run id>-w<n>.<random>/`` and rename them into place when the
video is complete (:mod:`batch.job`), so whatever a killed run leaves there is never mistaken for an
output, but it stays until someone removes it. A run therefore holds an exclusive ``flock`` on
``<run id>.lock`` from before its first video until it ends; the kernel drops the lock when the
process dies, however it dies. A later run removes every staged folder whose run's lock it can take
(or that has no lock file at all: a run creates its lock before any folder), and leaves alone the
folders of runs still going, such as another batch writing into the same output folder. ``flock``
also holds across hosts on NFS (Linux maps it onto POSIX locks there), where a cluster keeps its
shared output folder.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from pathlib import Path
from typing import BinaryIO, Iterator

log = logging.getLogger(__name__)

LOCK_SUFFIX = ".lock"


def run_of(folder_name: str) -> str:
    """The run id of a staged folder ``<run id>-w<n>.<random>`` (actor name, then a random part)."""
    return folder_name.split(".", 1)[0].rsplit("-", 1)[0]


@contextlib.contextmanager
def run_lock(staging: Path, run_id: str) -> Iterator[None]:
    """Hold ``run_id``'s lock for the block; afterwards remove the run's staged folders, the lock file,
    and the staging folder itself when nothing else is left in it."""
    staging.mkdir(parents=True, exist_ok=True)
    lock = _acquire(staging / f"{run_id}{LOCK_SUFFIX}")
    try:
        yield
    finally:
        _remove_run(staging, run_id, lock)
        with contextlib.suppress(OSError):
            staging.rmdir()  # only when empty: another run may be using it


def remove_dead_runs(staging: Path) -> list[str]:
    """Remove what runs that are no longer alive left under ``staging``; returns their run ids."""
    if not staging.is_dir():
        return []
    runs = {run_of(p.name) for p in staging.iterdir() if p.is_dir()}
    runs |= {p.name.removesuffix(LOCK_SUFFIX) for p in staging.glob(f"*{LOCK_SUFFIX}")}
    removed = []
    for run_id in sorted(runs):
        lock = _try_lock(staging / f"{run_id}{LOCK_SUFFIX}")
        if lock is not None:
            _remove_run(staging, run_id, lock)
            removed.append(run_id)
    if removed:
        log.info("removed the staged files of %d ended batch runs: %s", len(removed), ", ".join(removed))
    return removed


def _acquire(path: Path) -> BinaryIO:
    """Open and lock ``path`` (waiting while a cleaner holds it), retrying if a cleaner unlinked the file
    between our open and our lock: the lock must be on the file that carries the name."""
    while True:
        f = open(path, "ab")
        fcntl.flock(f, fcntl.LOCK_EX)
        if _is_current(f, path):
            return f
        f.close()


def _try_lock(path: Path) -> BinaryIO | None:
    """The lock of a run that has ended (taken now, for its clean-up), or None while the run is alive.

    A run without a lock file has ended too: a file is created for it so the clean-up holds a lock.
    """
    f = open(path, "ab")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    if not _is_current(f, path):  # another cleaner removed it meanwhile: nothing left to do here
        f.close()
        return None
    return f


def _is_current(f: BinaryIO, path: Path) -> bool:
    try:
        return os.fstat(f.fileno()).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _remove_run(staging: Path, run_id: str, lock: BinaryIO) -> None:
    """Delete the run's staged folders, then its lock file while still holding the lock."""
    try:
        for leftover in staging.glob(f"{run_id}-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging / f"{run_id}{LOCK_SUFFIX}")
    finally:
        lock.close()
