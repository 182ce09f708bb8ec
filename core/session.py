"""One source's frame loop body: pipeline → overlay → recorder, shared by the headless CLI and the window.

:class:`Session` is the only place that turns a decoded frame into faces, a drawn picture and recorded
rows, so the CLI (:mod:`core.headless`, a loop over frames) and the window (:mod:`app.worker`, a thread
with a one-frame mailbox) cannot drift apart: the same drawing, the same frame-rate count, the same
recording sidecar (:func:`sidecar_metadata`, the one builder of its keys).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from core.draw import DrawOptions, draw_faces
from core.pipeline import FramePipeline, FrameResult, PipelineConfig
from core.rate import RateMeter
from core.io.recorder import Recorder
from core.pose import CAMERA_MODEL
from core.runtime import LandmarkModel
from core.io.streaming import OscStreamer
from core.io.table import DEFAULT_GROUPS, ColumnGroup
from core.io.video import Frame


@dataclass(frozen=True)
class OutputPaths:
    """Where a run writes: landmarks CSV, its JSON sidecar, the annotated video (None = not written).

    A sidecar needs the CSV (it describes it); the video is optional.
    """

    landmarks: Path | None
    sidecar: Path | None
    video: Path | None

    def files(self) -> list[Path]:
        return [p for p in (self.landmarks, self.sidecar, self.video) if p is not None]


def sidecar_metadata(model: LandmarkModel, config: PipelineConfig, source: str) -> dict[str, Any]:
    """The recording sidecar's keys (besides the recorder's own ``recording`` section), for every caller."""
    return {"source": source, "model": model.info.name, "model_path": str(model.info.path),
            "provider": model.provider, "settings": dataclasses.asdict(config), "camera_model": CAMERA_MODEL}


@dataclass(frozen=True)
class Processed:
    """One frame after the session: the pipeline's result, and the picture drawn (None when not needed)."""

    frame: Frame
    result: FrameResult
    image: np.ndarray | None
    fps: float  # processing rate when this frame finished (frames per second over the last second)


class Session:
    """Processes frames of one source and, while a recorder is attached, records them.

    ``show``: every frame is drawn (a view displays it); otherwise only frames a video records are
    drawn, since drawing is wasted on a CSV-only run. ``clock`` (seconds) times the frame rate, which
    is counted one way everywhere: processed frames over the last second of that clock.
    """

    def __init__(self, pipeline: FramePipeline, draw: DrawOptions | None = None, *, show: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.pipeline = pipeline
        self.draw = draw or DrawOptions()
        self.show = show
        self.clock = clock
        self.rate = RateMeter()
        self.recorder: Recorder | None = None
        self.streamer: OscStreamer | None = None

    def process(self, frame: Frame) -> Processed:
        """Run the pipeline on ``frame`` and draw its faces onto ``frame.image`` (in place) if needed."""
        result = self.pipeline.process(frame.image, frame.timestamp)
        if self.streamer is not None:
            self.streamer.send(frame.index, frame.timestamp, result.faces)  # queued, never waits
        now = self.clock()
        self.rate.tick(now)
        fps = self.rate.rate(now)
        image = None
        if self.show or (self.recorder is not None and self.recorder.video_path is not None):
            image = draw_faces(frame.image, result.faces, self.pipeline.model.scheme, self.draw, fps or None)
        return Processed(frame, result, image, fps)

    def sidecar(self, source: str) -> dict[str, Any]:
        return sidecar_metadata(self.pipeline.model, self.pipeline.config, source)

    def start_recording(self, outputs: OutputPaths, source: str, fps: float, frame_size: tuple[int, int],
                        columns: tuple[ColumnGroup, ...] = DEFAULT_GROUPS) -> Recorder:
        """Attach a recorder writing ``outputs`` with CSV ``columns`` (raises :class:`core.io.recorder.RecordingError`)."""
        if outputs.landmarks is None:
            raise ValueError("a recording needs a landmarks CSV path")
        self.recorder = Recorder(outputs.video, outputs.landmarks, fps, frame_size, self.pipeline.model.info.scheme,
                                 self.sidecar(source), sidecar_path=outputs.sidecar, columns=columns)
        return self.recorder

    def start_streaming(self, target: str) -> OscStreamer:
        """Send every processed frame's faces as OSC to ``HOST:PORT`` (``core.io.streaming``; ValueError if
        the target is malformed or cannot be resolved); replaces a running stream."""
        streamer = OscStreamer.to(target).start()
        self.stop_streaming()
        self.streamer = streamer
        return streamer

    def stop_streaming(self) -> None:
        streamer, self.streamer = self.streamer, None
        if streamer is not None:
            streamer.close()

    def record(self, processed: Processed) -> None:
        """Write one processed frame to the attached recorder (nothing without one)."""
        if self.recorder is not None:
            frame = processed.frame
            self.recorder.write(frame.index, frame.timestamp, processed.image, processed.result.faces,
                                model_output_finite=not processed.result.non_finite)

    def stop_recording(self) -> Recorder | None:
        """Detach and finalise the recorder (returns it for its counts); raises RecordingError if closing fails."""
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            recorder.close()
        return recorder

    def reset(self) -> None:
        """A new source: forget the faces and the frame rate."""
        self.pipeline.reset()
        self.rate = RateMeter()
