"""Frame sources: a camera index or a video file behind one reader that survives bad frames.

A corrupt frame in the middle of a file is skipped with a warning instead of ending the stream; only
a run of unreadable frames (or the real end) stops it. A camera that stops delivering ends the
stream the same way, so callers finalise recordings instead of freezing.
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

log = logging.getLogger(__name__)

#: Consecutive failed reads after which a file is considered ended (or a camera gone).
MAX_CONSECUTIVE_FAILURES = 10


class SourceError(RuntimeError):
    """The source cannot be opened; the message is one line meant for the user."""


@dataclass(frozen=True)
class SourceInfo:
    name: str
    is_camera: bool
    width: int
    height: int
    fps: float
    frame_count: int | None  # None for cameras


@dataclass(frozen=True)
class Frame:
    index: int  # position in the source (skipped frames leave gaps)
    timestamp: float  # seconds: media time for files, monotonic clock for cameras
    image: np.ndarray


def parse_source(spec: str | int) -> int | Path:
    """``"0"`` or ``0`` → camera index 0; anything else is a file path."""
    if isinstance(spec, int):
        return spec
    return int(spec) if spec.strip().isdigit() else Path(spec)


@contextlib.contextmanager
def opencv_logging_silenced() -> Iterator[None]:
    """OpenCV's own log level set to silent for the block (process-wide while it lasts), then restored.

    Opening a camera index that is not there makes OpenCV's backends log to stderr (V4L2 "can't open
    camera by index", obsensor "Camera index out of range") before our one-line error says it better."""
    previous = cv2.getLogLevel()
    cv2.setLogLevel(0)  # LOG_LEVEL_SILENT
    try:
        yield
    finally:
        cv2.setLogLevel(previous)


class VideoSource:
    """Iterate :class:`Frame` objects from a camera or file; ``skipped`` counts corrupt frames."""

    def __init__(self, spec: str | int, width: int | None = None, height: int | None = None) -> None:
        target = parse_source(spec)
        self.is_camera = isinstance(target, int)
        if not self.is_camera:
            if target.is_dir():
                raise SourceError(f"{target} is a folder, not a video file")
            if not target.is_file():
                raise SourceError(f"video file not found: {target}")
            self.capture = cv2.VideoCapture(str(target))
            if not self.capture.isOpened():
                raise SourceError(f"cannot read video file {target} (not a video OpenCV can decode)")
        else:
            with opencv_logging_silenced():  # a missing index makes V4L2/obsensor log; our message says it
                self.capture = cv2.VideoCapture(target)
            if not self.capture.isOpened():
                raise SourceError(f"no camera at index {target} (none connected, or in use by another program)")
            if width and height:
                self.capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
                self.capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.info = SourceInfo(str(target) if not self.is_camera else f"camera {target}", self.is_camera,
                               int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                               int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                               fps if 0 < fps < 1000 else 30.0, count if not self.is_camera and count > 0 else None)
        self.skipped = 0
        self._position = 0
        self._started = time.monotonic()

    def read(self) -> Frame | None:
        """The next good frame, or None at the end (or when the camera stops delivering)."""
        failures = 0
        while failures < MAX_CONSECUTIVE_FAILURES:
            ok, image = self.capture.read()
            index = self._position
            self._position += 1
            if ok and image is not None and image.ndim == 3 and image.shape[0] > 0 and image.shape[1] > 0:
                stamp = time.monotonic() - self._started if self.is_camera else index / self.info.fps
                return Frame(index, stamp, image)
            if not self.is_camera and (self.info.frame_count is None or index >= self.info.frame_count):
                return None  # the real end of the file
            failures += 1
            self.skipped += 1
            log.warning("%s: frame %d is unreadable or corrupt; skipped", self.info.name, index)
        if self.is_camera:
            log.warning("%s stopped delivering frames", self.info.name)
        return None

    def seek(self, index: int) -> int:
        """Make ``index`` (clamped to the file) the next frame :meth:`read` returns, and return it (files
        only; the window's seek bar)."""
        if self.is_camera:
            raise ValueError("a camera cannot seek")
        index = max(0, min(index, (self.info.frame_count or index + 1) - 1))
        self.capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        self._position = index
        return index

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:
            yield frame

    def release(self) -> None:
        self.capture.release()

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
