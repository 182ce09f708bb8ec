"""Capture in its own thread: read a camera or a file and hand only the newest frame on.

The processing thread may be slower than the source. If frames were queued, latency would grow
without bound; instead the capture thread overwrites the one pending frame (the sink drops stale
ones), so what is processed and shown is always the newest. Files are paced to their own frame rate
(they would otherwise be read as fast as the disk allows), cameras are read as fast as they deliver.

Files can be paused, stepped one frame and sought; the thread does it between reads, so the worker
just sees frames arrive (or stop arriving). Frame indices and timestamps the worker sees keep
increasing across seeks and loops (trackers and smoothers need a forward clock); the position in the
file of any delivered frame is :meth:`CaptureThread.media_position`.
"""
from __future__ import annotations

import bisect
import logging
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import cv2

from core.rate import RateMeter
from core.io.probe import open_video
from core.io.video import Frame, SourceInfo, VideoSource

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class SourceSpec:
    """What to capture: a camera index or a file, the camera resolution and frame rate (0 = the camera's
    default), looping (files), and the camera's name for titles and menus."""

    target: int | Path
    width: int = 0
    height: int = 0
    loop: bool = False
    fps: int = 0
    name: str = ""

    @property
    def is_camera(self) -> bool:
        return isinstance(self.target, int)

    @property
    def label(self) -> str:
        if self.is_camera:
            return self.name or f"camera {self.target}"
        return Path(self.target).name


class FrameSink(Protocol):
    """Where the capture thread delivers (the processing worker)."""

    def offer_frame(self, capture: "CaptureThread", frame: Frame) -> None: ...

    def source_ended(self, capture: "CaptureThread", reason: str) -> None: ...


def open_source(spec: SourceSpec) -> VideoSource:
    """Open ``spec`` (raises :class:`core.io.video.SourceError` with a one-line message: a file that is
    not a video or image is refused by :func:`core.io.probe.open_video`; OpenCV's own camera-probe
    logging is silenced in :class:`core.io.video.VideoSource`)."""
    if not spec.is_camera:
        return open_video(str(spec.target))
    source = VideoSource(spec.target, spec.width or None, spec.height or None)
    if spec.fps:
        source.capture.set(cv2.CAP_PROP_FPS, spec.fps)  # a request: the camera picks its nearest mode
        source.info = replace(source.info, fps=source.capture.get(cv2.CAP_PROP_FPS) or source.info.fps)
    return source


@dataclass
class _Request:
    """What the UI asked the thread to do next (guarded by the thread's condition)."""

    paused: bool = False
    steps: int = 0  # frames to deliver while paused
    seek_to: int | None = None


class CaptureThread(threading.Thread):
    """Reads ``source`` until it ends, :meth:`stop` is called or (files) forever when looping.

    Frame indices and timestamps keep increasing across loops and seeks of a file, so trackers,
    smoothers and recordings see one continuous stream. ``mirror`` flips every frame left–right from
    the next frame on (a selfie view); what is processed, shown and recorded is the flipped frame.
    """

    def __init__(self, source: VideoSource, spec: SourceSpec, sink: FrameSink, mirror: bool = False) -> None:
        super().__init__(name=f"capture {spec.label}", daemon=True)
        self.source = source
        self.spec = spec
        self.sink = sink
        self.mirror = mirror
        self.rate = RateMeter()
        self._stopping = threading.Event()
        self._control = threading.Condition()
        self._request = _Request()
        # (first stream index, file position − stream index) from there on; read by the UI thread.
        self._segments: list[tuple[int, int]] = []

    @property
    def info(self) -> SourceInfo:
        return self.source.info

    @property
    def seekable(self) -> bool:
        """Files with a known length can be paused, stepped and sought; cameras cannot."""
        return not self.spec.is_camera and self.info.frame_count is not None

    @property
    def paused(self) -> bool:
        with self._control:
            return self._request.paused

    def set_paused(self, paused: bool) -> None:
        with self._control:
            self._request.paused = paused
            self._request.steps = 0
            self._control.notify_all()

    def step(self) -> None:
        """Pause (if playing) and deliver the next frame."""
        with self._control:
            self._request.paused = True
            self._request.steps += 1
            self._control.notify_all()

    def seek(self, position: int) -> None:
        """Continue from frame ``position`` of the file; while paused, deliver that frame and stay paused."""
        with self._control:
            self._request.seek_to = position
            self._request.steps = 0
            self._control.notify_all()

    def media_position(self, stream_index: int) -> int | None:
        """Where in the file the delivered frame ``stream_index`` came from (None for cameras or unknown)."""
        if self.spec.is_camera:
            return None
        with self._control:
            at = bisect.bisect_right(self._segments, (stream_index, float("inf"))) - 1
            return stream_index + self._segments[at][1] if at >= 0 else None

    def stop(self) -> None:
        """Ask the thread to finish and wait for it; the source is released by the thread itself."""
        self._stopping.set()
        with self._control:
            self._control.notify_all()
        if self.ident is None:  # never started: free the device now, so it can be reopened at once
            self.source.release()
        elif threading.current_thread() is not self:
            self.join()

    def _next_move(self) -> tuple[int | None, bool]:
        """Wait while paused; then (the position to seek to or None, whether the pacing clock restarts
        at the next frame: after a wait, a step or a seek)."""
        with self._control:
            request, waited = self._request, False
            while request.paused and not request.steps and request.seek_to is None and not self._stopping.is_set():
                waited = True
                self._control.wait()
            seek, request.seek_to = request.seek_to, None
            if request.paused and seek is None:
                request.steps = max(0, request.steps - 1)
            return seek, waited or request.paused or seek is not None

    def run(self) -> None:
        reason = ""
        count = 0
        offset = last = 0.0  # media time added after each loop or seek of a file; the latest timestamp
        clock = time.monotonic()  # wall time at which stream time 0 is due (files are paced to it)
        try:
            while not self._stopping.is_set():
                seek, restart_clock = self._next_move()
                if self._stopping.is_set():
                    break
                if seek is not None and self.seekable:
                    position = self.source.seek(seek)
                    offset = (last + 1.0 / self.info.fps if count else 0.0) - position / self.info.fps
                frame = self.source.read()
                if frame is None and self.spec.loop and count and not self.source.is_camera:
                    offset = last + 1.0 / self.source.info.fps  # round again, the clock running on
                    self.source.release()
                    self.source = open_source(self.spec)
                    frame = self.source.read()
                if frame is None:
                    reason = self._end_reason()
                    break
                timestamp = last = frame.timestamp + offset
                if restart_clock:
                    clock = time.monotonic() - timestamp
                elif not self.source.is_camera:
                    self._stopping.wait(max(0.0, clock + timestamp - time.monotonic()))
                self.rate.tick()
                self._note_position(count, frame.index)
                image = cv2.flip(frame.image, 1) if self.mirror else frame.image
                self.sink.offer_frame(self, Frame(count, timestamp, image))
                count += 1
        except Exception as exc:  # a backend failing mid-stream must end the session, not kill it silently
            log.exception("capture from %s failed", self.spec.label)
            reason = f"reading {self.spec.label} failed: {exc}"
        finally:
            self.source.release()
        if not self._stopping.is_set():
            self.sink.source_ended(self, reason)

    def _note_position(self, stream_index: int, file_index: int) -> None:
        delta = file_index - stream_index
        with self._control:
            if not self._segments or self._segments[-1][1] != delta:
                self._segments.append((stream_index, delta))

    def _end_reason(self) -> str:
        if self.source.is_camera:
            return (f"{self.source.info.name} stopped delivering frames (unplugged, or taken by another program); "
                    f"capture stopped.")
        return f"End of {self.spec.label}."
