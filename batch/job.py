"""One video of a batch: run the one frame loop into a staging folder, then move the files into place.

The frame loop is :func:`core.headless.process_video`, the same code the headless command runs, so a
batch output equals, row for row, what ``python main.py --headless`` writes for that file. Outputs
are written under ``DIR/.batch-partial/<worker>.<random>/`` with their final names (the sidecar names
the files it describes) and renamed into place only when the video is complete, so a killed worker
leaves nothing that looks finished; the driver writes the manifest row after the rename.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from batch.inputs import VideoTask
from batch.manifest import JobResult
from core.headless import HeadlessError, process_video
from core.run_options import OutputPaths, RunOptions
from core.runtime import LandmarkModel

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class JobSettings:
    """The batch's run options, the same for every video (each video's ``source`` and ``outputs`` are
    filled in by :func:`run_video`, the model is the worker's), and whether videos are written."""

    options: RunOptions
    video: bool = False

    def as_dict(self) -> dict[str, Any]:
        """What changes a video's outputs, as recorded in the manifest (and compared on a rerun)."""
        return {"pipeline": asdict(self.options.pipeline), "max_frames": self.options.max_frames,
                "video": self.video, "uncertainty_columns": self.options.sinks.uncertainty_columns,
                "precision": self.options.precision}


@dataclass(frozen=True)
class Finished:
    """A video the pool is done with: its result, which worker gave it, after how many attempts."""

    task: VideoTask
    result: JobResult
    worker: str
    attempts: int


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none), for a manifest row."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run_video(task: VideoTask, model: LandmarkModel, settings: JobSettings, staging_root: Path,
              label: str = "job") -> JobResult:
    """Process ``task.source`` with ``model``; its outputs appear at ``task.outputs()`` only when complete.

    ``label`` starts the staging folder's name (the worker's name), so leftovers say who left them.
    """
    staging = staging_root / f"{label}.{uuid.uuid4().hex[:12]}"
    final = task.outputs(settings.video)
    temporary = [staging / path.name for path in final]
    outputs = OutputPaths(landmarks=temporary[0], sidecar=temporary[1],
                          video=temporary[2] if settings.video else None)
    started = time.perf_counter()
    try:
        staging.mkdir(parents=True)
        summary = process_video(replace(settings.options, source=str(task.source), outputs=outputs), model,
                                progress=False)
        for source, target in zip(temporary, final):
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
    except HeadlessError as exc:
        return JobResult("failed", str(exc), seconds=_since(started), provider=model.provider)
    except OSError as exc:  # staging or renaming: the output folder went away or filled up
        return JobResult("failed", f"cannot write output: {exc}", seconds=_since(started), provider=model.provider)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return JobResult("done", "", summary.frames, round(summary.faces_per_frame, 4), _since(started), summary.provider,
                     "; ".join(summary.warnings()))


def _since(started: float) -> float:
    """Seconds since ``started`` (a perf_counter value), to the millisecond the manifest keeps."""
    return round(time.perf_counter() - started, 3)
