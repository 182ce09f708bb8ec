"""The processing thread around :class:`core.session.Session`: newest frame → session → image for the view.

The session (pipeline → overlay → sinks, the same one headless and batch runs loop over) runs only here,
so the UI thread never waits on inference, and the pipeline (tracks, smoothers) needs no locks; the
sinks — the recording while one runs, the OSC stream while a source runs — are written on the
session's own writer thread, so encoding never holds up processing either. The UI talks to the
worker through commands (closures run between frames: settings, output options, model swaps,
recording, sessions);
the capture thread talks to it through a one-frame mailbox that keeps only the newest frame. Results
go back the same way: one pending image at most, so a busy UI skips stale frames instead of queueing.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PyQt6.QtCore import QThread, pyqtSignal
from PyQt6.QtGui import QImage

from app.capture import CaptureThread
from app.file_names import timestamped_stem, unused_path
from core.draw import DrawOptions
from core.pipeline import FramePipeline, PipelineConfig
from core.io.recorder import RecordingError
from core.io.video import Frame
from core.run_options import OutputPaths, SinkOptions
from core.runtime import LandmarkModel
from core.session import Session
from core.sinks import RecorderSink, RunStart, Sink, live_sinks

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class FrameStats:
    """What the status bar shows about the frame on screen."""

    processed: int  # frames processed since the source started
    frame_index: int  # the frame's position in the stream (files: in the file, until it loops)
    capture_fps: float
    processing_fps: float
    faces: int
    timestamp: float = 0.0  # the frame's stream time (s), for the window's live plot
    results: tuple = ()  # the frame's FaceResults (pose, confidence), for the window's live plot


@dataclass(frozen=True)
class ShownFrame:
    image: QImage  # the annotated frame, owned (a deep copy of the numpy buffer)
    stats: FrameStats


@dataclass(frozen=True)
class RecordingSummary:
    """A finalised recording: its files, how many frames went in, and why it stopped if it failed."""

    video: Path
    csv: Path
    frames: int
    seconds: float
    error: str = ""


@dataclass
class _Recording:
    sink: RecorderSink
    started: float = field(default_factory=time.monotonic)


def to_qimage(image: np.ndarray) -> QImage:
    """BGR uint8 ``[H, W, 3]`` → a QImage that owns its pixels (safe to hand to the UI thread)."""
    height, width = image.shape[:2]
    image = np.ascontiguousarray(image)
    return QImage(image.data, width, height, image.strides[0], QImage.Format.Format_BGR888).copy()


class ProcessingWorker(QThread):
    """Long-lived thread that owns the pipeline; sources come and go as sessions.

    Public methods are called from the UI thread; they only queue work. Signals are delivered to the
    UI thread by Qt's queued connections.
    """

    frameReady = pyqtSignal()  # a new frame waits in take_shown()
    sessionEnded = pyqtSignal(object, str)  # the CaptureThread, the reason ("" when the user stopped it)
    recordingStarted = pyqtSignal(object)  # Path of the video file
    recordingFinished = pyqtSignal(object)  # RecordingSummary
    recordingFailed = pyqtSignal(str)

    def __init__(self, pipeline: FramePipeline, draw_options: DrawOptions, max_frames: int | None = None,
                 clock: Callable[[], float] = time.monotonic, outputs: SinkOptions = SinkOptions()) -> None:
        super().__init__()
        self.session = Session(pipeline, draw_options, show=True, clock=clock)
        self.max_frames = max_frames
        self.outputs = outputs  # worker-thread state from here on: changed by set_outputs
        self._cond = threading.Condition()
        self._commands: list[Callable[[], None]] = []
        self._frame: tuple[CaptureThread, Frame] | None = None
        self._ended: tuple[CaptureThread, str] | None = None
        self._shown: ShownFrame | None = None
        self._quit = False
        self.dropped = 0  # frames overwritten before processing (the price of never lagging)
        # Worker-thread state:
        self._capture: CaptureThread | None = None
        self._recording: _Recording | None = None
        self._live: list[Sink] | None = None  # the running source's live sinks; None: not opened yet
        self._processed = 0
        self._frame_size: tuple[int, int] | None = None

    @property
    def pipeline(self) -> FramePipeline:
        return self.session.pipeline

    # --- called from the UI thread ------------------------------------------------------------

    def begin_session(self, capture: CaptureThread) -> None:
        """Start processing ``capture`` (not yet started; the worker starts it)."""
        self._submit(lambda: self._begin(capture))

    def end_session(self, capture: CaptureThread) -> None:
        """Finish the session of ``capture`` (already stopped by the caller): finalise any recording."""
        self._submit(lambda: self._end(capture, ""))

    def reconfigure(self, config: PipelineConfig) -> None:
        self._submit(lambda: self.pipeline.reconfigure(config))

    def set_model(self, model: LandmarkModel) -> None:
        self._submit(lambda: self.pipeline.set_model(model))

    def set_draw_options(self, options: DrawOptions) -> None:
        self._submit(lambda: setattr(self.session, "draw", options))

    def start_recording(self, folder: Path) -> None:
        self._submit(lambda: self._start_recording(Path(folder)))

    def set_outputs(self, outputs: SinkOptions) -> None:
        """Use ``outputs`` from the next frame on: the live sinks (the stream) are reopened if they
        changed; a recording keeps the options it started with, the next one takes the new ones."""
        self._submit(lambda: self._set_outputs(outputs))

    def _set_outputs(self, outputs: SinkOptions) -> None:
        if outputs != self.outputs:
            self._close_live()  # reopened with the new options at the next frame
        self.outputs = outputs

    def stop_recording(self) -> None:
        self._submit(self._stop_recording)

    def shutdown(self) -> None:
        """Finish the session (finalising a recording) and end the thread; the caller then ``wait()``s."""
        def quit_() -> None:
            self._quit = True
        self._submit(quit_)

    def take_shown(self) -> ShownFrame | None:
        """The newest processed frame, once (None if it was already taken)."""
        with self._cond:
            shown, self._shown = self._shown, None
        return shown

    # --- called from the capture thread (FrameSink) ---------------------------------------------

    def offer_frame(self, capture: CaptureThread, frame: Frame) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = (capture, frame)
            self._cond.notify()

    def source_ended(self, capture: CaptureThread, reason: str) -> None:
        with self._cond:
            self._ended = (capture, reason)
            self._cond.notify()

    # --- the worker thread ----------------------------------------------------------------------

    def _submit(self, command: Callable[[], None]) -> None:
        with self._cond:
            self._commands.append(command)
            self._cond.notify()

    def run(self) -> None:
        try:
            while not self._quit:
                with self._cond:
                    while not (self._commands or self._frame or self._ended):
                        self._cond.wait()
                    commands, self._commands = self._commands, []
                    pending, self._frame = self._frame, None
                    ended, self._ended = self._ended, None
                for command in commands:
                    command()
                if pending is not None and pending[0] is self._capture:
                    self._process(pending[1])
                if ended is not None and ended[0] is self._capture:
                    self._end(ended[0], ended[1])
        finally:
            if self._capture is not None:
                self._capture.stop()
                self._end(self._capture, "")
            self.session.close()

    def _begin(self, capture: CaptureThread) -> None:
        if self._capture is not None:
            self._capture.stop()
            self._end(self._capture, "")
        self.session.reset()
        self._capture, self._processed, self._frame_size = capture, 0, None
        with self._cond:
            self.dropped = 0
        capture.start()

    def _end(self, capture: CaptureThread, reason: str) -> None:
        if capture is not self._capture:
            return
        self._stop_recording()
        self._close_live()
        self._capture = None
        with self._cond:
            self._frame = None
        log.info("%s: %d frames processed, %d stale frames dropped. %s", capture.spec.label, self._processed,
                 self.dropped, reason)
        self.sessionEnded.emit(capture, reason)

    def _process(self, frame: Frame) -> None:
        capture = self._capture
        if self._live is None:
            self._open_live(frame)
        try:
            processed = self.session.process(frame)
        except Exception as exc:  # a failing frame must end the session with a message, not kill the thread
            log.exception("processing frame %d failed", frame.index)
            capture.stop()
            self._end(capture, f"Processing failed: {exc}")
            return
        image = processed.image
        self._processed += 1
        self._frame_size = (image.shape[1], image.shape[0])
        self._check_sinks()
        stats = FrameStats(self._processed, frame.index, capture.rate.rate(), processed.fps,
                           len(processed.result.faces), frame.timestamp, tuple(processed.result.faces))
        shown = ShownFrame(to_qimage(image), stats)
        with self._cond:
            notify, self._shown = self._shown is None, shown
        if notify:
            self.frameReady.emit()
        if self.max_frames and self._processed >= self.max_frames:
            capture.stop()
            self._end(capture, f"Stopped after {self._processed} frames (--max-frames).")

    # --- sinks: the live ones and the recording -------------------------------------------------------

    def _run_start(self, fps: float, frame_size: tuple[int, int]) -> RunStart:
        return self.session.run_start(self._capture.info.name, fps, frame_size)

    def _open_live(self, frame: Frame) -> None:
        """Open the live sinks for the running source at its first frame (a bad target is logged, and
        not retried until the options change)."""
        self._live = []
        run = self._run_start(self._capture.info.fps, (frame.image.shape[1], frame.image.shape[0]))
        for sink in live_sinks(self.outputs):
            try:
                self.session.open_sink(sink, run)
                self._live.append(sink)
            except ValueError as exc:
                log.warning("not streaming: %s", exc)

    def _close_live(self) -> None:
        live, self._live = self._live or [], None
        for sink in live:
            try:
                self.session.close_sink(sink)
            except Exception as exc:  # a live output failing must not stop the source
                log.warning("closing %s: %s", type(sink).__name__, exc)

    def _check_sinks(self) -> None:
        """A sink whose write failed: the recording stops with its message, a live sink is closed."""
        failed = self.session.failure()
        if failed is None:
            return
        sink, exc = failed
        if self._recording is not None and sink is self._recording.sink:
            log.error("recording failed: %s", exc)
            self._stop_recording(f"Recording stopped: {exc}")
        elif self._live and sink in self._live:
            self._live.remove(sink)
            with contextlib.suppress(Exception):
                self.session.close_sink(sink)
            log.warning("%s stopped: %s", type(sink).__name__, exc)

    def _start_recording(self, folder: Path) -> None:
        if self._recording is not None:
            return
        if self._capture is None:
            self.recordingFailed.emit("Nothing to record: start a camera or open a video first.")
            return
        info = self._capture.info
        # Each frame is written at its real time; the nominal rate only sets the keyframe spacing.
        fps = min(self.session.rate.rate(), info.fps) or info.fps
        size = self._frame_size or (info.width, info.height)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            base = unused_path(folder, timestamped_stem(), (".mp4", ".csv", ".json"))
            # Frames arrive already drawn with the user's overlay, so the recording looks like the view.
            sink = RecorderSink(OutputPaths(base.with_suffix(".csv"), base.with_suffix(".json"),
                                            base.with_suffix(".mp4")), self.outputs)
            self.session.open_sink(sink, self._run_start(fps, size))
        except (RecordingError, OSError, ValueError) as exc:
            self.recordingFailed.emit(f"Cannot start recording in {folder}: {exc}")
            return
        self._recording = _Recording(sink)
        log.info("recording to %s", sink.outputs.video)
        self.recordingStarted.emit(sink.outputs.video)

    def _stop_recording(self, error: str = "") -> None:
        """Finalise the recording (after every frame handed to it is written); ``error``: why it stopped."""
        recording, self._recording = self._recording, None
        if recording is None:
            return
        try:
            self.session.close_sink(recording.sink)
        except (RecordingError, OSError, ValueError) as exc:
            error = error or f"Recording stopped: {exc}"
        outputs = recording.sink.outputs
        summary = RecordingSummary(outputs.video, outputs.landmarks, recording.sink.frames,
                                   time.monotonic() - recording.started, error)
        log.info("recording finished: %s (%d frames)", outputs.video, recording.sink.frames)
        self.recordingFinished.emit(summary)
