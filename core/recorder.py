"""Recording sink: the annotated video, one CSV row per face per frame, and a JSON sidecar.

A recording must survive the way sessions really end — the window killed, the laptop out of battery,
the disk full — so every choice here is about what is on disk at any instant:

* **Video: fragmented MP4 written with PyAV** (``movflags=frag_keyframe+empty_moov+default_base_moof``,
  a keyframe every second, packets flushed as they are muxed). The header carries no sample table;
  each second of video is a self-contained fragment appended to the file when the next keyframe
  starts. A killed process therefore leaves a playable file (OpenCV, FFmpeg, VLC, browsers) holding
  every completed fragment: at most about one second — the fragment being built — is lost, and no
  repair step is needed. H.264 (libx264, ``veryfast``, ``zerolatency``) when PyAV's FFmpeg has it,
  otherwise MPEG-4 Part 2. The video is constant frame rate at ``fps`` (one picture per :meth:`write`);
  each frame's real time is in the CSV.
* **CSV**: one ``write`` per frame with all that frame's rows, flushed to the OS at once (a killed
  process loses nothing already written) and ``os.fsync``-ed at most every
  :data:`FSYNC_INTERVAL_S` (so a power cut loses at most that much).
* **Sidecar JSON** (``<video stem>.json`` unless given): the caller's dict (settings, model, provider,
  ...) plus a ``recording`` section with the start time, and on close the frame and row counts and
  the end time. A sidecar whose ``recording.ended`` is null belongs to a recording that was cut short.
  Written atomically (temporary file + rename).

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
from typing import Any, BinaryIO, Callable

import av
import cv2
import numpy as np

from core.draw import DrawOptions, draw_faces
from core.results import FaceResult
from core.schemes import LandmarkScheme, get_scheme

log = logging.getLogger(__name__)

#: Longest time between two ``os.fsync`` calls per file while recording.
FSYNC_INTERVAL_S = 0.5
#: Seconds between keyframes, hence the length of one MP4 fragment and the most video a kill loses.
KEYFRAME_INTERVAL_S = 1.0
CONTAINER_OPTIONS = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}
X264_OPTIONS = {"preset": "veryfast", "tune": "zerolatency", "crf": "23"}
MPEG4_BIT_RATE = 4_000_000

Opener = Callable[[Path], BinaryIO]


class RecordingError(RuntimeError):
    """Recording stopped because an output file could not be written; what was written stays valid."""


def open_for_writing(path: Path) -> BinaryIO:
    """Unbuffered binary file: every write reaches the OS at once, nothing waits in a Python buffer."""
    return open(path, "wb", buffering=0)


def csv_header(num_points: int) -> list[str]:
    """``frame,timestamp,track_id,confidence,yaw,pitch,roll,x0,y0,...`` for ``num_points`` landmarks."""
    coords = [f"{axis}{i}" for i in range(num_points) for axis in ("x", "y")]
    return ["frame", "timestamp", "track_id", "confidence", "yaw", "pitch", "roll", *coords]


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
    """PyAV fragmented-MP4 encoder writing into a :class:`_CommittedFile`."""

    def __init__(self, sink: _CommittedFile, fps: float, frame_size: tuple[int, int]) -> None:
        self.width, self.height = frame_size
        self.container = av.open(sink, mode="w", format="mp4", options=dict(CONTAINER_OPTIONS))
        self.codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream = self.container.add_stream(self.codec, rate=Fraction(fps).limit_denominator(1001))
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

    def write(self, frame_bgr: np.ndarray) -> None:
        if frame_bgr.shape[:2] != (self.stream.height, self.stream.width):
            frame_bgr = cv2.copyMakeBorder(frame_bgr, 0, self.stream.height - self.height, 0,
                                           self.stream.width - self.width, cv2.BORDER_REPLICATE)
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_bgr), format="bgr24")
        picture.pts = self.frames
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
    """Writes annotated frames to ``video_path``, landmarks to ``csv_path`` and a JSON sidecar.

    ``frame_size`` is ``(width, height)`` of the frames given to :meth:`write`; ``scheme`` fixes the
    CSV's landmark columns; ``sidecar`` is the caller's metadata (settings, model name, provider, ...).
    With ``annotate`` the faces are drawn with :func:`core.draw.draw_faces` (``draw_options``, default
    all layers) onto a copy of each frame; without, frames are recorded as given (already annotated).
    ``opener`` opens the two data files (a test can inject a failing file there).
    """

    def __init__(self, video_path: str | Path, csv_path: str | Path, fps: float, frame_size: tuple[int, int],
                 scheme: LandmarkScheme | str, sidecar: dict[str, Any] | None = None, *,
                 sidecar_path: str | Path | None = None, annotate: bool = True,
                 draw_options: DrawOptions | None = None, opener: Opener = open_for_writing) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if len(frame_size) != 2 or min(frame_size) <= 0:
            raise ValueError(f"frame_size must be (width, height), got {frame_size}")
        self.scheme = get_scheme(scheme) if isinstance(scheme, str) else scheme
        self.video_path, self.csv_path = Path(video_path), Path(csv_path)
        self.sidecar_path = Path(sidecar_path) if sidecar_path else self.video_path.with_suffix(".json")
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.draw_options = (draw_options or DrawOptions()) if annotate else None
        self.frames = 0
        self.rows = 0
        self._closed = False
        self._error: str | None = None
        self._meta = dict(sidecar or {})
        opened: list[_CommittedFile] = []
        try:
            for path in (self.video_path, self.csv_path):
                opened.append(_CommittedFile(opener(path), path))
            self._video_file, self._csv_file = opened
            self._video = _VideoWriter(self._video_file, fps, self.frame_size)
            self._csv_file.write((",".join(csv_header(self.scheme.num_points)) + "\n").encode())
            self._csv_file.commit(0.0)
        except (OSError, av.FFmpegError) as exc:
            for f in opened:
                with contextlib.suppress(OSError):
                    f.close()
            raise RecordingError(f"cannot start recording to {self.video_path} / {self.csv_path}: {exc}") from exc
        self._recording = {
            "video": self.video_path.name, "csv": self.csv_path.name, "fps": fps,
            "frame_size": list(self.frame_size), "scheme": self.scheme.name,
            "video_codec": self._video.codec, "container": "fragmented mp4 (" + CONTAINER_OPTIONS["movflags"] + ")",
            "keyframe_interval_s": KEYFRAME_INTERVAL_S, "started": _now(), "ended": None, "frames": None,
            "rows": None, "error": None,
        }
        self._write_sidecar()
        log.info("recording to %s (%s), %s, %s", self.video_path, self._video.codec, self.csv_path, self.sidecar_path)

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def write(self, frame_index: int, timestamp: float, frame_bgr: np.ndarray, faces: list[FaceResult]) -> None:
        """Record one frame and its faces (drawn onto a copy of the frame unless drawing is off)."""
        if self._error is not None:
            raise RecordingError(f"recording already stopped: {self._error}")
        if self._closed:
            raise RecordingError("recorder is closed")
        w, h = self.frame_size
        if frame_bgr.shape != (h, w, 3) or frame_bgr.dtype != np.uint8:
            raise ValueError(f"expected a {w}x{h} BGR uint8 frame, got {frame_bgr.shape} {frame_bgr.dtype}")
        rows = self._rows(frame_index, timestamp, faces)
        if self.draw_options is not None:
            frame_bgr = draw_faces(frame_bgr.copy(), faces, self.scheme, self.draw_options)
        sink = self._video_file
        try:
            self._video.write(frame_bgr)
            self._video_file.commit(FSYNC_INTERVAL_S)
            sink = self._csv_file
            sink.write(rows.encode())
            sink.commit(FSYNC_INTERVAL_S)
        except (OSError, av.FFmpegError) as exc:
            self._fail(sink.path, exc)
        self.frames += 1
        self.rows += len(faces)

    def close(self) -> None:
        """Finish the video, close the files and complete the sidecar; safe to call again."""
        if self._closed:
            return
        self._closed = True
        if self._error is not None:
            return
        sink = self._video_file
        try:
            self._video.finish()
            self._video_file.close()
            sink = self._csv_file
            self._csv_file.close()
        except (OSError, av.FFmpegError) as exc:
            self._fail(sink.path, exc)
        self._recording.update(ended=_now(), frames=self.frames, rows=self.rows)
        self._write_sidecar()
        log.info("recorded %d frames (%d rows) to %s", self.frames, self.rows, self.video_path)

    def _rows(self, frame_index: int, timestamp: float, faces: list[FaceResult]) -> str:
        lines = []
        for face in faces:
            pts = np.asarray(face.landmarks, dtype=np.float64)
            if pts.shape != (self.scheme.num_points, 2):
                raise ValueError(f"face {face.track_id}: expected {self.scheme.num_points} landmarks "
                                 f"({self.scheme.name}), got {pts.shape}")
            pose = ("", "", "") if face.pose is None else tuple(f"{a:.2f}" for a in (face.pose.yaw, face.pose.pitch,
                                                                                      face.pose.roll))
            coords = ",".join(f"{v:.2f}" for v in pts.ravel())
            lines.append(f"{int(frame_index)},{float(timestamp):.6f},{int(face.track_id)},{float(face.confidence):.4f},"
                         f"{','.join(pose)},{coords}\n")
        return "".join(lines)

    def _fail(self, path: Path, exc: BaseException) -> None:
        """Keep what was written valid, note the error in the sidecar, and raise :class:`RecordingError`."""
        self._error = f"cannot write {path}: {exc}"
        self._closed = True
        for f in (self._video_file, self._csv_file):
            f.roll_back()
        self._video.discard()
        for f in (self._video_file, self._csv_file):
            try:
                f.close()
            except OSError as close_exc:
                log.debug("closing %s after a write error: %s", f.path, close_exc)
        self._recording.update(ended=_now(), frames=self.frames, rows=self.rows, error=self._error)
        self._write_sidecar()
        log.error("recording stopped after %d frames: %s", self.frames, self._error)
        raise RecordingError(f"recording stopped after {self.frames} frames: {self._error}; the files keep "
                             f"every whole CSV row and video fragment written before") from exc

    def _write_sidecar(self) -> None:
        data = {**self._meta, "recording": self._recording}
        tmp = self.sidecar_path.with_name(self.sidecar_path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
            os.replace(tmp, self.sidecar_path)
        except OSError as exc:  # the sidecar is a convenience; never let it hide the data files' status
            log.error("%s: cannot write the recording sidecar: %s", self.sidecar_path, exc)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="milliseconds")
