"""Capture in its own thread: read a camera or a file and hand only the newest frame on.

The processing thread may be slower than the source. If frames were queued, latency would grow
without bound; instead the capture thread overwrites the one pending frame (the sink drops stale
ones), so what is processed and shown is always the newest. Files are paced to their own frame rate
(they would otherwise be read as fast as the disk allows), cameras are read as fast as they deliver.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol

import cv2

from core.rate import RateMeter
from core.video import Frame, SourceInfo, VideoSource

log = logging.getLogger(__name__)

#: The clip the window falls back to when there is no camera (shipped with the app, plays in a loop).
DEMO_CLIP = Path(__file__).resolve().parent.parent / "assets" / "demo.mp4"
#: Camera indices offered where the operating system cannot list devices cheaply.
DEFAULT_CAMERA_CHOICES = (0, 1, 2, 3)


@dataclass(frozen=True)
class SourceSpec:
    """What to capture: a camera index or a file, the camera resolution (0 = default), and looping."""

    target: int | Path
    width: int = 0
    height: int = 0
    loop: bool = False

    @property
    def is_camera(self) -> bool:
        return isinstance(self.target, int)

    @property
    def label(self) -> str:
        return f"camera {self.target}" if self.is_camera else Path(self.target).name


class FrameSink(Protocol):
    """Where the capture thread delivers (the processing worker)."""

    def offer_frame(self, capture: "CaptureThread", frame: Frame) -> None: ...

    def source_ended(self, capture: "CaptureThread", reason: str) -> None: ...


def available_cameras() -> list[int]:
    """Camera indices to offer in the source menu: the real ``/dev/video*`` devices on Linux."""
    if sys.platform.startswith("linux"):
        return sorted(int(p.name[5:]) for p in Path("/dev").glob("video*") if p.name[5:].isdigit())
    return list(DEFAULT_CAMERA_CHOICES)


def open_source(spec: SourceSpec) -> VideoSource:
    """Open ``spec`` (raises :class:`core.video.SourceError` with a one-line message).

    Opening a camera index that is not there makes OpenCV's backends log their own lines (V4L2 "can't
    open camera by index", obsensor "Camera index out of range"); our message says it better, so
    OpenCV's logging is silenced while a camera is opened."""
    if not spec.is_camera:
        return VideoSource(str(spec.target), spec.width or None, spec.height or None)
    with opencv_logging_silenced():
        return VideoSource(spec.target, spec.width or None, spec.height or None)


@contextlib.contextmanager
def opencv_logging_silenced() -> Iterator[None]:
    """OpenCV's log level set to silent for the block (process-wide while it lasts), then restored."""
    previous = cv2.getLogLevel()
    cv2.setLogLevel(0)  # LOG_LEVEL_SILENT
    try:
        yield
    finally:
        cv2.setLogLevel(previous)


class CaptureThread(threading.Thread):
    """Reads ``source`` until it ends, :meth:`stop` is called or (files) forever when looping.

    Frame indices and timestamps keep increasing across loops of a file, so trackers, smoothers and
    recordings see one continuous stream.
    """

    def __init__(self, source: VideoSource, spec: SourceSpec, sink: FrameSink) -> None:
        super().__init__(name=f"capture {spec.label}", daemon=True)
        self.source = source
        self.spec = spec
        self.sink = sink
        self.rate = RateMeter()
        self._stopping = threading.Event()

    @property
    def info(self) -> SourceInfo:
        return self.source.info

    def stop(self) -> None:
        """Ask the thread to finish and wait for it; the source is released by the thread itself."""
        self._stopping.set()
        if self.ident is None:  # never started: free the device now, so it can be reopened at once
            self.source.release()
        elif threading.current_thread() is not self:
            self.join()

    def run(self) -> None:
        reason = ""
        count = 0
        offset = last = 0.0  # media time added per completed loop of a file; the latest timestamp
        started = time.monotonic()
        try:
            while not self._stopping.is_set():
                frame = self.source.read()
                if frame is None:
                    if not self.spec.loop or count == 0 or self.source.is_camera:
                        reason = self._end_reason()
                        break
                    offset = last + 1.0 / self.source.info.fps
                    self.source.release()
                    self.source = open_source(self.spec)
                    continue
                timestamp = last = frame.timestamp + offset
                if not self.source.is_camera:
                    self._stopping.wait(max(0.0, started + timestamp - time.monotonic()))
                self.rate.tick()
                self.sink.offer_frame(self, Frame(count, timestamp, frame.image))
                count += 1
        except Exception as exc:  # a backend failing mid-stream must end the session, not kill it silently
            log.exception("capture from %s failed", self.spec.label)
            reason = f"reading {self.spec.label} failed: {exc}"
        finally:
            self.source.release()
        if not self._stopping.is_set():
            self.sink.source_ended(self, reason)

    def _end_reason(self) -> str:
        if self.source.is_camera:
            return (f"{self.source.info.name} stopped delivering frames (unplugged, or taken by another program); "
                    f"capture stopped.")
        return f"End of {self.spec.label}."
