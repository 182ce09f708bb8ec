"""Which videos a batch processes, and where each one's outputs go.

INPUT arguments are files, folders (searched recursively for video extensions) or glob patterns. Every
video keeps its path relative to the deepest folder holding all of them, under the output folder, so two
``clip.mp4`` in different folders never write to the same place, and the same command maps every video
to the same outputs on every run (which is what lets a rerun skip finished work).
"""
from __future__ import annotations

import glob
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from core.headless import HeadlessError, check_not_sources

#: File name endings treated as videos when a folder or glob is searched (a file named explicitly is
#: always taken, whatever its ending, so a bad file becomes a failed row rather than silently missing).
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})

#: Folder under the output folder where videos being processed are written (same file system as the
#: final outputs, so the rename is atomic); never searched for inputs.
STAGING_NAME = ".batch-partial"


class UsageError(ValueError):
    """The command cannot start (no inputs, clashing outputs, unwritable folder); exit code 2."""


@dataclass(frozen=True)
class VideoTask:
    """One input video and the output stem its files get (``STEM.csv``, ``STEM.json``, ``STEM.mp4``)."""

    source: Path  # absolute, so workers started in any folder (or on another node) open the same file
    relative: Path  # the source relative to the inputs' common folder, as shown to the user
    stem: Path  # absolute output path without a suffix

    def outputs(self, video: bool) -> list[Path]:
        """The files a finished run leaves: landmarks CSV and JSON sidecar, plus the video when asked."""
        suffixes = (".csv", ".json", ".mp4") if video else (".csv", ".json")
        return [self.stem.with_suffix(s) for s in suffixes]


def discover(specs: list[str], out_dir: Path) -> list[Path]:
    """Absolute paths of the videos named by ``specs``, in a stable order, each once.

    Folder and glob searches leave out this batch's own files: the output folder where it lies inside
    the searched folder (``batch in --out in/results`` would otherwise take last run's ``STEM.mp4`` as
    new inputs, and nest ``results/results/...`` deeper on every run) and any staging folder. A file
    named explicitly is always taken. Raises :class:`UsageError` naming the first spec that matches
    nothing (a typo should not quietly shrink a batch).
    """
    found: dict[Path, None] = {}
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            matches = sorted(p for p in _walk(path, out_dir) if p.suffix.lower() in VIDEO_EXTENSIONS)
        elif path.exists() or os.path.lexists(path):
            matches = [path]
        else:
            base = _glob_base(spec)
            matches = sorted(Path(p) for p in glob.glob(spec, recursive=True)
                             if Path(p).is_file() and Path(p).suffix.lower() in VIDEO_EXTENSIONS
                             and not _own_output(Path(p), base, out_dir))
            if not matches:
                raise UsageError(f"no video matches {spec!r} (not a file, folder or glob that finds videos)")
        for match in matches:
            found.setdefault(Path(os.path.abspath(match)), None)
    if not found:
        raise UsageError("no input videos found in " + " ".join(specs))
    return list(found)


def _walk(folder: Path, out_dir: Path) -> Iterator[Path]:
    """Files under ``folder``, not descending into the batch's own folders (see :func:`discover`)."""
    for parent, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not _own_output(Path(parent, d), folder, out_dir))
        yield from (Path(parent, name) for name in files if Path(parent, name).is_file())


def _own_output(path: Path, base: Path, out_dir: Path) -> bool:
    """Whether ``path``, found searching ``base``, is a batch's output: inside a staging folder, or inside
    ``out_dir`` while ``base`` is not (an output folder that *is* the searched folder, or holds it,
    leaves the inputs in place: their outputs there are not videos or are refused as the inputs)."""
    if STAGING_NAME in Path(os.path.relpath(path, base)).parts:
        return True
    return _within(path, out_dir) and not _within(base, out_dir)


def _within(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or below it, links resolved (so a symlinked output folder is recognised)."""
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder))


def _glob_base(spec: str) -> Path:
    """The folder a glob searches: its leading parts without wildcards (``in/**/*.mp4`` → ``in``)."""
    parts = Path(spec).parts
    fixed = list(itertools.takewhile(lambda part: not glob.has_magic(part), parts))
    return Path(*fixed) if fixed else Path(".")


def plan_outputs(sources: list[Path], out_dir: Path) -> list[VideoTask]:
    """Map each source to ``out_dir / <path relative to the common folder>`` without its suffix.

    Two inputs that would share a stem (``clip.mp4`` beside ``clip.avi``) are a usage error: one would
    overwrite the other.
    """
    root = Path(os.path.commonpath([s.parent for s in sources]))
    tasks: list[VideoTask] = []
    owners: dict[Path, Path] = {}
    for source in sources:
        relative = source.relative_to(root)
        stem = out_dir.absolute() / relative.with_suffix("")
        if stem in owners:
            raise UsageError(f"{owners[stem]} and {source} would write the same outputs ({stem}.csv); rename one")
        owners[stem] = source
        tasks.append(VideoTask(source, relative, stem))
    return tasks


def check_outputs_are_not_inputs(tasks: list[VideoTask], video: bool) -> None:
    """Refuse a plan in which any output is any input video (``--out`` on the input folder with
    ``--video`` maps ``a.mp4`` onto itself; a link can do it too): the final rename would replace the
    user's video. The headless command's check, applied to every planned output of the batch at once.
    """
    try:
        check_not_sources([task.source for task in tasks], [path for task in tasks for path in task.outputs(video)],
                          "choose another --out folder")
    except HeadlessError as exc:
        raise UsageError(str(exc)) from exc


def check_output_folder(out_dir: Path) -> None:
    """Create ``out_dir`` if needed and make sure it is writable; :class:`UsageError` otherwise."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output folder {out_dir}: {exc.strerror or exc}") from exc
    if not out_dir.is_dir():
        raise UsageError(f"output path is not a folder: {out_dir}")
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise UsageError(f"output folder is not writable: {out_dir}")
