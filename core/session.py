"""One source's frame loop body: pipeline → overlay → sinks, shared by headless, batch and the window.

:class:`Session` is the only place that turns a decoded frame into faces, a drawn picture and what the
outputs receive, so headless and batch runs (:mod:`core.headless`, a loop over frames) and the window
(:mod:`app.worker`, a thread with a one-frame mailbox) cannot drift apart: the same drawing, the same
frame-rate count, the same sinks fed from the same ordered writer thread (:mod:`core.sinks`), the same
recording sidecar (:func:`sidecar_metadata`, the one builder of its keys).
"""
from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any, Callable, Mapping

from core.draw import DrawOptions, draw_faces
from core.io.video import Frame
from core.pipeline import FramePipeline, FrameResult, PipelineConfig
from core.pose import CAMERA_MODEL
from core.rate import RateMeter
from core.runtime import LandmarkModel
from core.sinks import Processed, RunStart, Sink
from core.background import OrderedWriter

#: Processed frames waiting for the sinks' writer thread (also the depth of headless decoding ahead).
QUEUE_DEPTH = 4


def sidecar_metadata(model: LandmarkModel, config: PipelineConfig, source: str) -> dict[str, Any]:
    """The recording sidecar's keys (besides the recorder's own ``recording`` section), for every caller."""
    return {"source": source, "model": model.info.name, "model_path": str(model.info.path),
            "provider": model.provider, "settings": dataclasses.asdict(config), "camera_model": CAMERA_MODEL}


class Session:
    """Processes frames of one source and hands each to the open sinks, in order, on one writer thread.

    ``show``: every frame is drawn (a view displays it); otherwise only frames a sink needs as a picture
    (a video recording) are drawn, since drawing is wasted on a CSV-only run. ``clock`` (seconds) times
    the frame rate, which is counted one way everywhere: processed frames over the last second of that
    clock. Sinks (:mod:`core.sinks`) open and close on the caller's thread, so their errors are the
    caller's to report; their writes run on the writer thread, and a sink whose write fails gets no
    more frames, its error kept for :meth:`failure` and :meth:`close_sink`.
    """

    def __init__(self, pipeline: FramePipeline, draw: DrawOptions | None = None, *, show: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.pipeline = pipeline
        self.draw = draw or DrawOptions()
        self.show = show
        self.clock = clock
        self.rate = RateMeter()
        self.sinks: list[Sink] = []
        self._failed: dict[Sink, Exception] = {}
        self._writer: OrderedWriter[tuple[Processed, tuple[Sink, ...], bool]] | None = None
        self._behind = False  # frames queued for the writer thread still to be described there
        self._stage_lock = threading.Lock()
        self.stage_seconds: dict[str, float] = {}  # pipeline seconds per stage, summed over described frames

    def process(self, frame: Frame) -> Processed:
        """Run the pipeline on ``frame``, draw its faces onto ``frame.image`` (in place) if needed, and
        queue the result for every open sink (never waits for them, beyond the queue's bound).

        When nothing needs the faces drawn now (no view, no video sink) but sinks do receive them, their
        pose and state (``FramePipeline.describe``) are worked out on the writer thread, before the sinks
        get them: there that work overlaps the model's run on the next frame, which releases the GIL.
        The returned faces then get them only later; :attr:`stage_seconds` counts them once described."""
        result = self.pipeline.track(frame.image, frame.timestamp)
        needs_image = self.show or any(sink.needs_image for sink in self.sinks)
        behind = bool(self.sinks) and not needs_image
        if not behind:
            if self._behind:
                self.flush()  # the frames before this one are described first: blinks are followed in order
                self._behind = False
            self._described(self.pipeline.describe(result, frame.image))
        now = self.clock()
        self.rate.tick(now)
        fps = self.rate.rate(now)
        image = None
        if needs_image:
            image = draw_faces(frame.image, result.faces, self.pipeline.model.scheme, self.draw, fps or None)
        processed = Processed(frame, result, image, fps)
        if self.sinks:
            if self._writer is None:
                self._writer = OrderedWriter(self._deliver, QUEUE_DEPTH, name="sinks")
            self._writer.put((processed, tuple(self.sinks), behind))
            self._behind |= behind
        return processed

    def _described(self, result: FrameResult) -> None:
        """Count a described frame's stage times (from the thread that finished it)."""
        with self._stage_lock:
            for stage, seconds in result.timings.items():
                self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds

    def run_start(self, source: str, fps: float, frame_size: tuple[int, int],
                  timestamps: str | None = None) -> RunStart:
        """The description sinks open with, for a source named ``source`` (its sidecar keys built here)."""
        return RunStart(source, fps, frame_size, self.pipeline.model.info.scheme,
                        sidecar_metadata(self.pipeline.model, self.pipeline.config, source), timestamps)

    def open_sink(self, sink: Sink, run: RunStart) -> None:
        """Open ``sink`` (its errors raised here) and give it every frame processed from now on."""
        sink.open(run)
        self.sinks.append(sink)

    def close_sink(self, sink: Sink, summary: Mapping[str, Any] | None = None) -> None:
        """Stop giving ``sink`` frames, wait until those already given are written, and close it with
        ``summary``; raises the error of a failed write (or of closing)."""
        self.sinks.remove(sink)
        self.flush()
        error = self._failed.pop(sink, None)
        sink.close({} if error is not None else (summary or {}))
        if error is not None:
            raise error

    def close_sinks(self, summary: Mapping[str, Any] | None = None) -> None:
        """Close every open sink (all of them, whatever fails); raises the first error afterwards."""
        errors: list[Exception] = []
        for sink in list(self.sinks):
            try:
                self.close_sink(sink, summary)
            except Exception as exc:  # the other sinks must still be finalised
                errors.append(exc)
        if errors:
            raise errors[0]

    def failure(self) -> tuple[Sink, Exception] | None:
        """The first open sink whose write failed, with its error (it gets no more frames), or None."""
        return next(((s, e) for s, e in list(self._failed.items()) if s in self.sinks), None)

    def flush(self) -> None:
        """Wait until every frame handed to the sinks is written."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """End the writer thread (after the frames already queued); the sinks are the caller's to close."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    def _deliver(self, item: tuple[Processed, tuple[Sink, ...], bool]) -> None:
        """The writer thread: one frame to the sinks that were open when it was processed, described
        first when it was left to this thread (``behind``)."""
        processed, sinks, behind = item
        if behind:
            self._described(self.pipeline.describe(processed.result, processed.frame.image))
        for sink in sinks:
            if sink not in self._failed:
                try:
                    sink.write(processed)
                except Exception as exc:  # kept for the caller; the other sinks go on
                    self._failed[sink] = exc

    def reset(self) -> None:
        """A new source: forget the faces and the frame rate."""
        self.flush()  # frames still to be described belong to the old source's faces
        self._behind = False
        self.pipeline.reset()
        self.rate = RateMeter()
