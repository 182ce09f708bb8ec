"""A run's outputs as sinks: opened with the run's description, given every processed frame, closed
with what is known only at the end.

The recorder (video + CSV + sidecar, :mod:`core.io.recorder`) and the OSC streamer
(:mod:`core.io.streaming`) are the two sinks; :class:`core.session.Session` feeds every open sink from
one ordered writer thread, in the window as in headless and batch runs, so no host writes on its
processing thread and each host gets every output. A new kind of output is one class with the three
methods of :class:`Sink` (and, if users choose it, a field of :class:`core.run_options.SinkOptions`
plus its row).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol

import numpy as np

from core.io.recorder import Recorder
from core.io.streaming import OscStreamer
from core.io.video import Frame
from core.pipeline import FrameResult
from core.run_options import OutputPaths, SinkOptions


@dataclass(frozen=True)
class Processed:
    """One frame after the session: the pipeline's result, and the picture drawn (None when not needed)."""

    frame: Frame
    result: FrameResult
    image: np.ndarray | None
    fps: float  # processing rate when this frame finished (frames per second over the last second)


@dataclass(frozen=True)
class RunStart:
    """What a sink is told when it opens: the source, its frames' rate and size, the landmark scheme,
    the sidecar's description of the run (``core.session.sidecar_metadata``) and how the source stamps
    its frames (``core.io.video``'s words; None when unknown)."""

    source: str
    fps: float
    frame_size: tuple[int, int]
    scheme: str
    metadata: Mapping[str, Any]
    timestamps: str | None = None


class Sink(Protocol):
    """An output of a run. ``open`` and ``close`` run on the caller's thread (their errors are the
    caller's to report); ``write`` runs on the session's writer thread, in frame order."""

    @property
    def needs_image(self) -> bool:
        """Whether :meth:`write` needs the drawn picture (drawing is skipped for runs no one sees)."""
        ...

    def open(self, run: RunStart) -> None: ...

    def write(self, processed: Processed) -> None: ...

    def close(self, summary: Mapping[str, Any]) -> None:
        """Finish; ``summary`` holds the facts known only at the end (how completely the source was read:
        :data:`core.io.video.SOURCE_FIELDS`), empty where the host knows none."""
        ...


class RecorderSink:
    """The landmarks CSV, its JSON sidecar and (when ``outputs.video`` is set) the annotated video."""

    def __init__(self, outputs: OutputPaths, options: SinkOptions = SinkOptions()) -> None:
        if outputs.landmarks is None:
            raise ValueError("a recording needs a landmarks CSV path")
        self.outputs = outputs
        self.options = options
        self.recorder: Recorder | None = None

    @property
    def needs_image(self) -> bool:
        return self.outputs.video is not None

    def open(self, run: RunStart) -> None:
        """Create the files (raises :class:`core.io.recorder.RecordingError` or OSError)."""
        self.recorder = Recorder(self.outputs.video, self.outputs.landmarks, run.fps, run.frame_size, run.scheme,
                                 dict(run.metadata), sidecar_path=self.outputs.sidecar, columns=self.options.columns())
        if run.timestamps is not None:
            self.recorder.annotate(timestamps=run.timestamps)

    def write(self, processed: Processed) -> None:
        frame = processed.frame
        self.recorder.write(frame.index, frame.timestamp, processed.image, processed.result.faces,
                            model_output_finite=not processed.result.non_finite)

    def close(self, summary: Mapping[str, Any]) -> None:
        if summary:
            self.recorder.annotate(**summary)
        self.recorder.close()

    @property
    def frames(self) -> int:
        """Frames fully written so far."""
        return self.recorder.frames if self.recorder is not None else 0


class StreamSink:
    """Every frame's faces as OSC to ``HOST:PORT``; queued to the streamer's own sender thread, so a
    slow network never holds up the writer (frames are dropped instead)."""

    needs_image = False

    def __init__(self, target: str) -> None:
        self.target = target
        self.streamer: OscStreamer | None = None

    def open(self, run: RunStart) -> None:
        """Start sending (ValueError when the target is malformed or does not resolve)."""
        self.streamer = OscStreamer.to(self.target).start()

    def write(self, processed: Processed) -> None:
        self.streamer.send(processed.frame.index, processed.frame.timestamp, processed.result.faces)

    def close(self, summary: Mapping[str, Any]) -> None:
        self.streamer.close()


def live_sinks(options: SinkOptions) -> list[Sink]:
    """The sinks that follow a whole run without files of their own (the window keeps them open while a
    source runs, recording or not)."""
    return [StreamSink(options.stream)] if options.stream else []


def run_sinks(outputs: OutputPaths, options: SinkOptions) -> list[Sink]:
    """Every sink of a run that writes ``outputs``: the live ones first (they hold no files, so one that
    cannot start leaves nothing behind), then the recording when a CSV is asked for."""
    return [*live_sinks(options), *([RecorderSink(outputs, options)] if outputs.landmarks is not None else [])]
