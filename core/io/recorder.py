"""Recording sink: the landmarks CSV, a JSON sidecar and, optionally, the annotated video.

A sink writes what it is given: frames arrive already drawn (:class:`core.session.Session` draws
them), the CSV layout is :mod:`core.io.table`'s.

A recording must survive the way sessions really end — the window killed, the laptop out of battery,
the disk full — so every choice here is about what is on disk at any instant:

* **Video: fragmented MP4 written with PyAV** (``movflags=frag_keyframe+empty_moov+default_base_moof``,
  a keyframe every second, packets flushed as they are muxed). The header carries no sample table;
  each second of video is a self-contained fragment appended to the file when the next keyframe
  starts. A killed process therefore leaves a playable file (OpenCV, FFmpeg, VLC, browsers) holding
  every completed fragment: at most about one second — the fragment being built — is lost, and no
  repair step is needed. ``.mov`` gets the same fragmented QuickTime layout; ``.mkv`` is Matroska,
  whose clusters are likewise appended and flushed as they complete; any other extension is refused
  (:func:`container_for`) rather than written with a container its name does not promise.
  H.264 (libx264, preset :data:`X264_OPTIONS`, ``zerolatency``) when PyAV's FFmpeg has it, otherwise
  MPEG-4 Part 2. Each picture carries its frame's real timestamp as its presentation time (1/90000 s
  units, from the first frame), so a recording whose processing dropped frames still plays for as
  long as it lasted.
* **CSV**: one ``write`` per frame with all that frame's rows, flushed to the OS at once (a killed
  process loses nothing already written) and ``os.fsync``-ed at most every
  :data:`FSYNC_INTERVAL_S` (so a power cut loses at most that much).
* **Sidecar JSON** (``<CSV stem>.json`` unless given): the caller's dict (settings, model, provider,
  ...) plus a ``recording`` section with the start time, and on close the frame and row counts and
  the end time. A sidecar whose ``recording.ended`` is null belongs to a recording that was cut short.
  Written atomically (temporary file + rename); on a full disk, where the temporary file cannot be
  written, the final version goes over the old one in the room it reserved (:data:`SIDECAR_SLACK`).

Write errors (disk full, a vanished drive) raise :class:`RecordingError` after cutting both files back
to their last consistent length (whole CSV rows, whole video fragments), so what was recorded stays
valid; the sidecar records the error.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, Callable, Sequence

import cv2
import numpy as np

from core.partial_imports import lazy_module
from core.results import FaceResult
from core.schemes import LandmarkScheme, get_scheme
from core.geometry import PIXEL_CONVENTION
from core.io.table import DEFAULT_GROUPS, LAYOUT, ColumnGroup, LandmarkTable
from core.io.video import SOURCE_FIELDS

#: PyAV takes ~0.15 s to import and only a run that writes a video needs it (imported on first use).
av = lazy_module("av")

log = logging.getLogger(__name__)

#: Longest time between two ``os.fsync`` calls per file while recording.
FSYNC_INTERVAL_S = 0.5
#: Seconds between keyframes, hence the length of one MP4 fragment and the most video a kill loses.
KEYFRAME_INTERVAL_S = 1.0
_FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}
#: Video file extension → (FFmpeg muxer, its options). Every entry is crash-safe (see the module docstring).
CONTAINERS: dict[str, tuple[str, dict[str, str]]] = {
    ".mp4": ("mp4", _FRAGMENTED), ".mov": ("mov", _FRAGMENTED), ".mkv": ("matroska", {"flush_packets": "1"}),
}
#: ``ultrafast`` costs about 1.1 ms of CPU per 640×360 frame on this project's machine (``veryfast``: 3.5 ms)
#: for about 2.2× the file size; its constrained-baseline H.264 plays in every common player.
X264_OPTIONS = {"preset": "ultrafast", "tune": "zerolatency", "crf": "23"}
MPEG4_BIT_RATE = 4_000_000
#: Spaces that end the sidecar while recording: room to write its final version in place on a full disk
#: (the end time, counts and error replace nulls; the error names a path, so there is ample room).
SIDECAR_SLACK = 1024
#: Presentation-time unit of the video (the MPEG clock: exact for 24, 25, 30 and 30000/1001 fps).
TIME_BASE = Fraction(1, 90_000)

Opener = Callable[[Path], BinaryIO]


class RecordingError(RuntimeError):
    """Recording stopped because an output file could not be written; what was written stays valid."""


def open_for_writing(path: Path) -> BinaryIO:
    """Unbuffered binary file: every write reaches the OS at once, nothing waits in a Python buffer."""
    return open(path, "wb", buffering=0)


def container_for(path: Path) -> tuple[str, dict[str, str]]:
    """The muxer for a video file name; :class:`RecordingError` for an extension we do not write."""
    try:
        return CONTAINERS[path.suffix.lower()]
    except KeyError:
        raise RecordingError(f"cannot write video {path.name}: choose a name ending in "
                             f"{', '.join(CONTAINERS)} (other containers are not written crash-safe)") from None


class _CommittedFile:
    """An output file that remembers its last consistent length, to cut a failed write back to it.

    Also a complete-write adapter for PyAV, which drops the tail of a short write silently.
    """

    def __init__(self, file: BinaryIO, path: Path) -> None:
        self.file, self.path = file, path
        self.committed = 0
        self.abandoned = False
        self._last_sync = time.monotonic()

    def write(self, data: bytes) -> int:
        if self.abandoned:  # after a failure: let PyAV wind down without touching the file
            return len(data)
        view = memoryview(data)
        while view:
            written = self.file.write(view)
            view = view[written:]
        return len(data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self.file.seek(offset, whence)

    def tell(self) -> int:
        return self.file.tell()

    def commit(self, fsync_interval: float) -> None:
        """Everything written so far is consistent; fsync it if the last fsync is old enough."""
        self.committed = self.file.tell()
        if time.monotonic() - self._last_sync >= fsync_interval:
            os.fsync(self.file.fileno())
            self._last_sync = time.monotonic()

    def roll_back(self) -> None:
        """Cut the file to the last committed length and stop writing to it."""
        self.abandoned = True
        if self.file.closed:
            return
        try:
            self.file.truncate(self.committed)
        except OSError as exc:
            log.error("%s: could not cut back to %d bytes after a write error: %s", self.path, self.committed, exc)

    def close(self) -> None:
        if self.file.closed:
            return
        try:
            if not self.abandoned:
                os.fsync(self.file.fileno())
        finally:
            self.file.close()


class _VideoWriter:
    """PyAV encoder writing into a :class:`_CommittedFile`, each picture stamped with its real time."""

    def __init__(self, sink: _CommittedFile, fps: float, frame_size: tuple[int, int]) -> None:
        self.width, self.height = frame_size
        self.format, options = container_for(sink.path)
        self.container = av.open(sink, mode="w", format=self.format, options=dict(options))
        self.codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream = self.container.add_stream(self.codec, rate=Fraction(fps).limit_denominator(1001))
        stream.codec_context.time_base = TIME_BASE
        stream.time_base = TIME_BASE
        # 4:2:0 chroma needs even dimensions: an odd-sized frame is padded with one replicated row/column.
        stream.width, stream.height = self.width + self.width % 2, self.height + self.height % 2
        stream.pix_fmt = "yuv420p"
        stream.gop_size = max(1, round(fps * KEYFRAME_INTERVAL_S))
        if self.codec == "libx264":
            stream.options = dict(X264_OPTIONS)
        else:
            stream.bit_rate = MPEG4_BIT_RATE
        self.stream = stream
        self.frames = 0
        self._start: float | None = None
        self._last_pts = -1

    def write(self, frame_bgr: np.ndarray, timestamp: float) -> None:
        if frame_bgr.shape[:2] != (self.stream.height, self.stream.width):
            frame_bgr = cv2.copyMakeBorder(frame_bgr, 0, self.stream.height - self.height, 0,
                                           self.stream.width - self.width, cv2.BORDER_REPLICATE)
        # OpenCV's BGR → I420 is about 2.5× cheaper than letting FFmpeg's swscale convert bgr24.
        picture = av.VideoFrame.from_ndarray(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
        if self._start is None:
            self._start = timestamp
        # Strictly increasing, even if a clock repeats or steps back.
        self._last_pts = max(self._last_pts + 1, round((timestamp - self._start) / TIME_BASE))
        picture.pts, picture.time_base = self._last_pts, TIME_BASE
        self.container.mux(self.stream.encode(picture))
        self.frames += 1

    def finish(self) -> None:
        """Flush the encoder and write the last fragment (and the fragment index)."""
        self.container.mux(self.stream.encode(None))
        self.container.close()

    def discard(self) -> None:
        """Release the encoder after a failure; the sink is abandoned, so nothing reaches the file."""
        try:
            self.container.close()
        except (OSError, av.FFmpegError) as exc:
            log.debug("closing the abandoned video container: %s", exc)


class Recorder:
    """Writes landmarks to ``csv_path``, a JSON sidecar and, when ``video_path`` is given, the frames.

    ``frame_size`` is ``(width, height)`` of the frames given to :meth:`write`; ``scheme`` fixes the
    CSV's landmark columns; ``sidecar`` is the caller's metadata (settings, model name, provider, ...).
    Frames are recorded exactly as given (drawing is the caller's job). ``opener`` opens the data
    files (a test can inject a failing file there). ``columns``: the CSV's per-face column groups
    (``core.io.table``).
    """

    def __init__(self, video_path: str | Path | None, csv_path: str | Path, fps: float, frame_size: tuple[int, int],
                 scheme: LandmarkScheme | str, sidecar: dict[str, Any] | None = None, *,
                 sidecar_path: str | Path | None = None, opener: Opener = open_for_writing,
                 columns: Sequence[ColumnGroup] = DEFAULT_GROUPS) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if len(frame_size) != 2 or min(frame_size) <= 0:
            raise ValueError(f"frame_size must be (width, height), got {frame_size}")
        self.scheme = get_scheme(scheme) if isinstance(scheme, str) else scheme
        self.video_path = Path(video_path) if video_path is not None else None
        self.csv_path = Path(csv_path)
        self.sidecar_path = Path(sidecar_path) if sidecar_path else self.csv_path.with_suffix(".json")
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.table = LandmarkTable(self.scheme.num_points, columns)
        self.frames = 0
        self.rows = 0
        self.non_finite_frames = 0
        self._closed = False
        self._error: str | None = None
        self._meta = dict(sidecar or {})
        self._video: _VideoWriter | None = None
        opened: list[_CommittedFile] = []
        try:
            self._csv_file = _CommittedFile(opener(self.csv_path), self.csv_path)
            opened.append(self._csv_file)
            if self.video_path is not None:
                container_for(self.video_path)  # refuse the extension before creating the file
                opened.append(_CommittedFile(opener(self.video_path), self.video_path))
                self._video = _VideoWriter(opened[-1], fps, self.frame_size)
            self._csv_file.write(self.table.header_line().encode())
            self._csv_file.commit(0.0)
        except (OSError, av.FFmpegError) as exc:
            for f in opened:
                with contextlib.suppress(OSError):
                    f.close()
            targets = " / ".join(str(p) for p in (self.video_path, self.csv_path) if p is not None)
            raise RecordingError(f"cannot start recording to {targets}: {exc}") from exc
        except RecordingError:
            for f in opened:
                with contextlib.suppress(OSError):
                    f.close()
            raise
        self._files = opened
        self._recording = {
            "video": self.video_path.name if self.video_path else None, "csv": self.csv_path.name,
            "csv_layout": LAYOUT, "coordinates": f"x, y in the frame's pixels, {PIXEL_CONVENTION}",
            "csv_columns": len(self.table.columns), "fps": fps,
            "frame_size": list(self.frame_size), "scheme": self.scheme.name,
            "video_codec": self._video.codec if self._video else None,
            "container": self._container_note(), "video_timing": "each frame at its real timestamp",
            "keyframe_interval_s": KEYFRAME_INTERVAL_S, "started": _now(), "ended": None, "frames": None,
            "rows": None, "non_finite_frames": None, "error": None,
            "timestamps": None, **dict.fromkeys(SOURCE_FIELDS),  # the caller's to state (annotate)
        }
        self._write_sidecar()
        log.info("recording to %s, %s", ", ".join(str(f.path) for f in opened), self.sidecar_path)

    def _container_note(self) -> str | None:
        if self._video is None:
            return None
        options = CONTAINERS[self.video_path.suffix.lower()][1]
        return f"{self._video.format} ({options.get('movflags', 'clusters flushed as written')})"

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def annotate(self, **fields: Any) -> None:
        """State facts only the caller knows (how the source's timestamps are made, how completely it was
        read: ``timestamps`` and :data:`core.io.video.SOURCE_FIELDS`) in the sidecar's ``recording``
        section, and write the sidecar at once. Every recording has these keys (null until stated), so
        window and headless sidecars keep the same keys."""
        unknown = set(fields) - {"timestamps", *SOURCE_FIELDS}
        if unknown:
            raise ValueError(f"not a recording field a caller states: {sorted(unknown)}")
        self._recording.update(fields)
        self._write_sidecar()

    def write(self, frame_index: int, timestamp: float, frame_bgr: np.ndarray | None,
              faces: list[FaceResult], *, model_output_finite: bool = True) -> None:
        """Record one frame (the picture only when recording video) and its faces' rows.

        ``model_output_finite`` False counts the frame in the sidecar's ``non_finite_frames``: its
        model output held NaN or inf, so its rows say "no face" where the model, not the picture, failed."""
        if self._error is not None:
            raise RecordingError(f"recording already stopped: {self._error}")
        if self._closed:
            raise RecordingError("recorder is closed")
        if self._video is not None:
            w, h = self.frame_size
            if frame_bgr is None or frame_bgr.shape != (h, w, 3) or frame_bgr.dtype != np.uint8:
                got = "no frame" if frame_bgr is None else f"{frame_bgr.shape} {frame_bgr.dtype}"
                raise ValueError(f"expected a {w}x{h} BGR uint8 frame, got {got}")
        rows, count = self.table.frame_lines(frame_index, timestamp, faces)
        sink = self._csv_file
        try:
            if self._video is not None:
                sink = self._files[-1]
                self._video.write(frame_bgr, timestamp)
                sink.commit(FSYNC_INTERVAL_S)
                sink = self._csv_file
            sink.write(rows.encode())
            sink.commit(FSYNC_INTERVAL_S)
        except (OSError, av.FFmpegError) as exc:
            self._fail(sink.path, exc)
        self.frames += 1
        self.rows += count
        self.non_finite_frames += not model_output_finite

    def close(self) -> None:
        """Finish the video, close the files and complete the sidecar; safe to call again."""
        if self._closed:
            return
        self._closed = True
        if self._error is not None:
            return
        sink = self._csv_file
        try:
            if self._video is not None:
                sink = self._files[-1]
                self._video.finish()
            for sink in self._files:
                sink.close()
        except (OSError, av.FFmpegError) as exc:
            self._fail(sink.path, exc)
        self._recording.update(ended=_now(), frames=self.frames, rows=self.rows,
                               non_finite_frames=self.non_finite_frames)
        self._write_sidecar()
        log.info("recorded %d frames (%d rows) to %s", self.frames, self.rows, self.csv_path)

    def _fail(self, path: Path, exc: BaseException) -> None:
        """Keep what was written valid, note the error in the sidecar, and raise :class:`RecordingError`."""
        self._error = f"cannot write {path}: {exc}"
        self._closed = True
        for f in self._files:
            f.roll_back()
        if self._video is not None:
            self._video.discard()
        for f in self._files:
            try:
                f.close()
            except OSError as close_exc:
                log.debug("closing %s after a write error: %s", f.path, close_exc)
        self._recording.update(ended=_now(), frames=self.frames, rows=self.rows,
                               non_finite_frames=self.non_finite_frames, error=self._error)
        self._write_sidecar()
        log.error("recording stopped after %d frames: %s", self.frames, self._error)
        raise RecordingError(f"recording stopped after {self.frames} frames: {self._error}; the files keep "
                             f"every whole CSV row and video fragment written before") from exc

    def _write_sidecar(self) -> None:
        """Write the sidecar atomically; on a full disk, complete it in the room it already holds.

        While the recording runs the file ends in :data:`SIDECAR_SLACK` spaces (valid JSON
        whitespace): when the disk fills, the final version (end time, counts, the error) no longer
        fits in a new temporary file, but still fits over the old one, so a recording stopped by a
        full disk never reads as cut short (``ended: null``), and no empty temporary file is left.
        """
        text = json.dumps({**self._meta, "recording": self._recording}, indent=2, default=str) + "\n"
        data = (text + (" " * SIDECAR_SLACK if self._recording["ended"] is None else "")).encode("utf-8")
        tmp = self.sidecar_path.with_name(self.sidecar_path.name + ".tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, self.sidecar_path)
        except OSError as exc:  # the sidecar is a convenience; never let it hide the data files' status
            with contextlib.suppress(OSError):
                tmp.unlink()
            if not self._rewrite_sidecar_in_place(data.rstrip(b" ")):
                log.error("%s: cannot write the recording sidecar: %s", self.sidecar_path, exc)

    def _rewrite_sidecar_in_place(self, data: bytes) -> bool:
        """Overwrite the existing sidecar with ``data`` if it fits in the file's current size (no new
        blocks needed on a file system that overwrites in place); False when it cannot."""
        try:
            with open(self.sidecar_path, "r+b") as f:
                if len(data) > os.fstat(f.fileno()).st_size:
                    return False
                f.write(data)
                f.truncate()
                os.fsync(f.fileno())
        except OSError:
            return False
        return True


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="milliseconds")
