"""Is this file a video (or an image)? Asked of the container, before OpenCV is given the file.

OpenCV opens anything one of FFmpeg's demuxers accepts, and FFmpeg renders text files as pictures of
their text (the ``tty`` demuxer and its ``ansi`` codec, the ``bintext`` family), so a ``notes.txt``
passed as a source would be "processed" as frames of text and the run would end with exit 0. A file
is accepted here only when PyAV (the FFmpeg the recorder already uses) finds a video stream with a
real picture codec in it; an image file is one such stream (``image2``/``*_pipe``: ``mjpeg``,
``png``, ...), so photos are accepted as one-frame sources.
"""
from __future__ import annotations

from pathlib import Path

from core.io.video import SourceError, VideoSource, parse_source
from core.partial_imports import lazy_module

av = lazy_module("av")

#: FFmpeg demuxers and codecs that draw text as pictures: never a video a user meant to track.
TEXT_FORMATS = frozenset({"tty", "bin", "xbin", "adf", "idf"})
TEXT_CODECS = frozenset({"ansi", "bintext", "xbin", "idf"})


def check_video_file(path: Path) -> None:
    """Raise :class:`SourceError` (one line, naming the file) unless ``path`` holds a video stream with a
    real picture codec."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            fmt = container.format.name
            codecs = [stream.codec_context.name if stream.codec_context else None
                      for stream in container.streams.video]
    except (av.FFmpegError, OSError) as exc:
        raise SourceError(f"{path} is not a video or image file (FFmpeg cannot read it: {_reason(exc)})") from None
    if fmt in TEXT_FORMATS or any(codec in TEXT_CODECS for codec in codecs):
        raise SourceError(f"{path} is a text file, not a video or image file")
    if not any(codec and codec != "none" for codec in codecs):
        raise SourceError(f"{path} is not a video or image file (no video stream with a known codec)")


def open_video(spec: str | int, width: int | None = None, height: int | None = None) -> VideoSource:
    """:class:`VideoSource` for ``spec`` once a file has passed :func:`check_video_file` (cameras, missing
    files and folders go straight to :class:`VideoSource`, which names those problems itself)."""
    target = parse_source(spec)
    if isinstance(target, Path) and target.is_file():
        check_video_file(target)
    return VideoSource(spec, width, height)


def _reason(exc: BaseException) -> str:
    """FFmpeg's own words without PyAV's ``[Errno …]`` prefix and the file name it repeats."""
    return getattr(exc, "strerror", None) or str(exc)
