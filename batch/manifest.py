"""The batch manifest ``DIR/batch.jsonl``: one JSON line per video attempt, appended as results arrive.

It is what makes a batch resumable and auditable: a rerun skips a video whose latest row is ``done``
for the same input file (size and modification time), the same model (SHA-256 of the file) and the
same settings, with its outputs still present; everything else is redone. Lines are appended and
fsync'd one at a time, so a killed driver loses at most the line being written, and a torn last line
is ignored on reading.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MANIFEST_NAME = "batch.jsonl"


@dataclass(frozen=True)
class InputKey:
    """What must be unchanged for a finished video to count as done: file, model and settings."""

    input: str
    size: int
    mtime_ns: int
    model_sha256: str
    settings: dict[str, Any]


@dataclass(frozen=True)
class JobResult:
    """What one video produced; ``reason`` is the headless command's one-line error when it failed,
    ``warning`` what a done video's summary warned about (frames missing from the source, model output
    not finite), so an incomplete video is done but never silently."""

    status: str  # "done" | "failed"
    reason: str = ""
    frames: int = 0
    faces_per_frame: float = 0.0
    seconds: float = 0.0
    provider: str = ""
    warning: str = ""


@dataclass(frozen=True)
class ManifestRow:
    """One line of the manifest: the video's key, what it produced, by which worker, where, when."""

    key: InputKey
    result: JobResult
    worker: str = ""
    attempts: int = 1
    outputs: list[str] = field(default_factory=list)
    finished: str = ""

    def to_json(self) -> str:
        """One flat JSON object: key fields, result fields, then worker, attempts, outputs, finished."""
        extra = {"worker": self.worker, "attempts": self.attempts, "outputs": self.outputs, "finished": self.finished}
        return json.dumps({**asdict(self.key), **asdict(self.result), **extra})


def input_key(source: Path, model_sha256: str, settings: dict[str, Any]) -> InputKey:
    """The key of ``source`` as it is now (size and mtime of the file; 0/0 when it cannot be read)."""
    try:
        stat = source.stat()
        size, mtime = stat.st_size, stat.st_mtime_ns
    except OSError:
        size = mtime = 0
    return InputKey(str(source), size, mtime, model_sha256, normalise(settings))


def normalise(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as they read back from JSON (tuples become lists), so a fresh key equals a stored one."""
    return json.loads(json.dumps(settings, default=str))


def now() -> str:
    """Local time with offset, to the second: when a row was written."""
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


class Manifest:
    """Append-only JSONL at ``folder / batch.jsonl``; the latest row per input wins."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / MANIFEST_NAME
        self.latest: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            self._read()

    def _read(self) -> None:
        with self.path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                try:
                    row = json.loads(line)
                    self.latest[row["input"]] = row
                except (json.JSONDecodeError, KeyError, TypeError):
                    log.warning("%s line %d is not a manifest row (a torn write?); ignored", self.path, number)

    def is_done(self, key: InputKey, outputs: list[Path]) -> bool:
        """True when the latest row for this input is done under ``key`` and its outputs exist."""
        row = self.latest.get(key.input)
        if row is None or row.get("status") != "done":
            return False
        same = all(row.get(name) == value for name, value in asdict(key).items())
        return same and all(p.is_file() for p in outputs)

    def append(self, row: ManifestRow) -> None:
        """Write one row and fsync it, so it survives a crash of the driver right after.

        After a torn last line (a killed driver) the row starts on a new line, so it is not lost too.
        """
        line = row.to_json() + "\n"
        with self.path.open("ab+") as f:
            end = f.seek(0, os.SEEK_END)
            if end:
                f.seek(end - 1)
                if f.read(1) != b"\n":
                    f.write(b"\n")
            f.write(line.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        self.latest[row.key.input] = json.loads(line)
