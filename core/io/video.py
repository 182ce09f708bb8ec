"""Frame sources: a camera index or a video file behind one reader that survives bad frames.

A file is read up to the frame count its container declares: a damaged stretch in the middle is
skipped, however long, and reading goes on after it (OpenCV's decoder resumes at the next decodable
frame), so a damaged middle never cuts the rest of the file off. What was missing — a damaged stretch
or a file that ends before its declared count (truncated) — is counted (:class:`ReadReport`) so
callers can say so instead of ending in silence. A camera that stops delivering (a run of
:data:`MAX_CONSECUTIVE_FAILURES` failed reads) ends the stream, so callers finalise recordings
instead of freezing.

Timestamps of file frames are the decoder's presentation times (PTS), not ``index / fps``: webcam and
phone files often have a variable frame rate (the OpenFace ``.wmv`` clips: 63–80 ms between frames),
where ``index / fps`` drifts from the real times by tens of milliseconds.
"""
from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from core.partial_imports import lazy_module

#: PyAV (~0.15 s to import) reads a file's declared frame count when a file is opened.
av = lazy_module("av")

log = logging.getLogger(__name__)

#: Consecutive failed reads after which a camera is considered gone, or a file of unknown length ended.
MAX_CONSECUTIVE_FAILURES = 10
#: What the timestamps of file frames are, in the words the recording sidecar uses.
FILE_TIMESTAMPS = "presentation time (PTS) of each decoded frame, seconds, as the container states it"
CAMERA_TIMESTAMPS = "monotonic clock, seconds since the camera was opened"


class SourceError(RuntimeError):
    """The source cannot be opened; the message is one line meant for the user."""


@dataclass(frozen=True)
class SourceInfo:
    name: str
    is_camera: bool
    width: int
    height: int
    fps: float
    frame_count: int | None  # None for cameras; OpenCV's count (an estimate where the container states none)
    #: The frame count the container itself states (MP4/MOV/AVI do; WMV/MKV/WebM do not), else None:
    #: only a stated count can show that frames are missing at the end of a file.
    declared_frames: int | None = None
    stream_start: float = 0.0  # presentation time (s) where the file's video stream starts


#: The recording sidecar's fields about how completely the source was read (null where not reported).
SOURCE_FIELDS = ("frames_declared", "frames_read", "frames_missing", "stopped_early")


@dataclass(frozen=True)
class ReadReport:
    """How completely a file was read: what the run summary and the recording sidecar say about it."""

    declared: int | None  # frames the container states (None: it states none)
    read: int  # frames decoded and returned
    last_index: int  # index of the last frame returned (-1: none)
    missing: int  # frames known missing: skipped in the middle, and short of ``declared`` at the end
    stopped_early: bool  # the file ended before its declared last frame (truncated, or damaged at the end)

    def line(self) -> str | None:
        """The summary's warning, or None for a complete read."""
        if not self.missing:
            return None
        of = f" of {self.declared}" if self.declared is not None else ""
        where = f"stopped at frame {self.last_index + 1}{of}" if self.stopped_early else "read to the end"
        return (f"incomplete source: {where}; {self.read} frames read, {self.missing} missing "
                f"(unreadable or absent)")

    def sidecar(self) -> dict[str, int | bool | None]:
        """The sidecar's :data:`SOURCE_FIELDS`."""
        return dict(zip(SOURCE_FIELDS, (self.declared, self.read, self.missing, self.stopped_early)))


@dataclass(frozen=True)
class Frame:
    index: int  # position in the source (skipped frames leave gaps)
    timestamp: float  # seconds: presentation time for files, monotonic clock for cameras
    image: np.ndarray


def container_facts(path: Path) -> tuple[int | None, float]:
    """What ``path``'s container states about its first video stream (PyAV reads the header only):
    its frame count (None where it states none) and the presentation time of its start in seconds.

    OpenCV cannot tell either: where the container is silent its ``CAP_PROP_FRAME_COUNT`` estimates
    duration × fps (90 for an 88-frame OpenFace ``.wmv``), and its ``CAP_PROP_POS_MSEC`` counts from the
    stream's start (0.072 s before the real PTS of ``openface_change_lighting.wmv``)."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None, 0.0
            stream = container.streams.video[0]
            start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
            return int(stream.frames) or None, start
    except (av.FFmpegError, OSError, ValueError):
        return None, 0.0


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
    """Iterate :class:`Frame` objects from a camera or file; ``skipped`` counts frames known missing."""

    def __init__(self, spec: str | int, width: int | None = None, height: int | None = None) -> None:
        target = parse_source(spec)
        self.is_camera = isinstance(target, int)
        declared, start = None, 0.0
        if not self.is_camera:
            if target.is_dir():
                raise SourceError(f"{target} is a folder, not a video file")
            if not target.is_file():
                raise SourceError(f"video file not found: {target}")
            self.capture = cv2.VideoCapture(str(target))
            if not self.capture.isOpened():
                raise SourceError(f"cannot read video file {target} (not a video OpenCV can decode)")
            declared, start = container_facts(target)
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
                               fps if 0 < fps < 1000 else 30.0, count if not self.is_camera and count > 0 else None,
                               declared, start)
        self.timestamps = CAMERA_TIMESTAMPS if self.is_camera else FILE_TIMESTAMPS
        self.skipped = 0
        self.frames_read = 0
        self.finished = False  # read() has returned None: the source ended
        self._reads = 0  # read calls since the start (or the last seek): how far into the file we are
        self._next_index = 0  # the index the next frame gets if nothing is missing
        self._last_index = -1
        self._latest_stamp = -math.inf
        self._started = time.monotonic()

    def read(self) -> Frame | None:
        """The next good frame, or None at the end (or when the camera stops delivering).

        A file is read on through unreadable frames up to its frame count, so frames after a damaged
        stretch are not lost; only then (or after :data:`MAX_CONSECUTIVE_FAILURES` failures in a row
        where the count is unknown) does it end."""
        failures = 0
        while True:
            ok, image = self.capture.read()
            self._reads += 1
            if ok and image is not None and image.ndim == 3 and image.shape[0] > 0 and image.shape[1] > 0:
                return self._frame(image)
            failures += 1
            if self._ended(failures):
                self.finished = True
                self._log_end()
                return None

    def _ended(self, failures: int) -> bool:
        """After a failed read: has the source ended? Files read on until their (declared) frame count."""
        length = max(self.info.declared_frames or 0, self.info.frame_count or 0)
        if self.is_camera or not length:
            return failures >= MAX_CONSECUTIVE_FAILURES
        return self._reads >= length

    def _frame(self, image: np.ndarray) -> Frame:
        """Wrap a decoded picture: its index and timestamp, counting the frames missing before it."""
        if self.is_camera:
            index, stamp = self._next_index, time.monotonic() - self._started
        else:
            index, stamp = self._file_position()
        if index >= self._next_index:
            if index > self._next_index:
                self.skipped += index - self._next_index
                log.warning("%s: frames %d to %d are unreadable or missing; skipped", self.info.name,
                            self._next_index, index - 1)
            self._next_index = index + 1
        else:
            self.skipped = max(0, self.skipped - 1)  # a frame counted missing arrives late (reordered after a damaged stretch)
        self._last_index = max(self._last_index, index)
        self.frames_read += 1
        return Frame(index, stamp, image)

    def _file_position(self) -> tuple[int, float]:
        """(index, timestamp) of the frame just decoded, from its presentation time.

        OpenCV's ``CAP_PROP_POS_MSEC`` after a read is the decoded frame's PTS counted from the video
        stream's start (equal to PyAV's ``frame.pts × time_base − stream.start_time``; tests check it on
        the VFR clips), so the stream's start is added back: the timestamp is the PTS itself. The index
        is the time since the start at the nominal rate, so a damaged stretch leaves a gap of the right
        size and B-frames the decoder emits late after damage keep their own place; in order, indices
        never repeat (a variable-rate file running faster than nominal gets consecutive ones). Where
        the decoder knows no PTS (it reports 0 after the first frame), time is ``index / fps``.
        """
        since_start = self.capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        fps, start = self.info.fps, self.info.stream_start
        if not math.isfinite(since_start) or (since_start <= 0 and self.frames_read > 0 and self._latest_stamp >= 0):
            return self._next_index, start + self._next_index / fps
        position = round(since_start * fps)
        if since_start < self._latest_stamp:
            return position, start + since_start
        self._latest_stamp = since_start
        return max(self._next_index, position), start + since_start

    def _log_end(self) -> None:
        if self.is_camera:
            log.warning("%s stopped delivering frames", self.info.name)
            return
        report = self.report()
        if report.line():
            log.warning("%s: %s", self.info.name, report.line())

    def report(self) -> ReadReport:
        """How completely the file has been read so far (final once :attr:`finished`).

        Where the container states a frame count and the file was read to its end, the missing frames
        are that count minus the frames read (exact); otherwise the gaps seen so far."""
        declared = self.info.declared_frames
        if self.finished and declared is not None:
            missing = max(0, declared - self.frames_read)
            stopped = self._last_index + 1 < declared
        else:
            missing, stopped = self.skipped, False
        return ReadReport(declared, self.frames_read, self._last_index, missing, stopped)

    def seek(self, index: int) -> int:
        """Make ``index`` (clamped to the file) the next frame :meth:`read` returns, and return it (files
        only; the window's seek bar)."""
        if self.is_camera:
            raise ValueError("a camera cannot seek")
        index = max(0, min(index, (self.info.frame_count or index + 1) - 1))
        self.capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        self._reads = self._next_index = index
        self._latest_stamp = -math.inf
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
