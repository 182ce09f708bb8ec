"""How the window names what it saves: recordings and snapshots in the recording folder.

``anchorface_<date>_<time>`` sorts by time and holds no character any file system rejects; a name
already taken (two snapshots in one second, a recording's three files) gets ``_2``, ``_3`` … so nothing
is ever overwritten.
"""
from __future__ import annotations

import datetime
from pathlib import Path

#: The start of every saved file's name.
RECORDING_PREFIX = "anchorface"


def timestamped_stem(now: datetime.datetime | None = None) -> str:
    """``anchorface_2026-11-28_17-30-05``: the base name of a recording or snapshot taken ``now``."""
    return f"{RECORDING_PREFIX}_{(now or datetime.datetime.now()):%Y-%m-%d_%H-%M-%S}"


def unused_path(folder: Path, stem: str, suffixes: tuple[str, ...]) -> Path:
    """``folder/stem`` (without suffix), made unique so that no file with any of ``suffixes`` exists."""
    candidate, n = folder / stem, 1
    while any(candidate.with_suffix(s).exists() for s in suffixes):
        n += 1
        candidate = folder / f"{stem}_{n}"
    return candidate
