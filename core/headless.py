"""Process a video file or camera without a window, as :class:`core.run_options.RunOptions` say: the
engine of ``python main.py --headless`` and of every batch video.

:func:`process_video` is the loop over one :class:`core.session.Session` with an already-loaded model
(the batch runner calls it once per video); :func:`run` is the whole run around it: it checks every
option and the outputs (never the source, never an existing file unless overwriting is allowed, a
container we can write) before any file is opened, loads the model, and calls it. Decoding, inference
+ drawing and writing overlap on three threads (:mod:`core.background`); frames stay in order.

Every failure a user can cause (bad source, bad model, unwritable output, disk full) becomes one
:class:`HeadlessError` line; outputs written so far stay valid. The command line around it is
``main.py``'s.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from core.draw import DrawOptions
from core.io.probe import open_video
from core.io.recorder import RecordingError, container_for
from core.io.video import ReadReport, SourceError, VideoSource, parse_source
from core.detection import FaceDetector, make_detector
from core.pipeline import FramePipeline, close_detector
from core.run_options import RunOptions
from core.runtime import DeviceError, LandmarkModel, ModelError, load_model
from core.session import QUEUE_DEPTH, Session
from core.sinks import run_sinks
from core.background import prefetch

log = logging.getLogger(__name__)

class HeadlessError(RuntimeError):
    """A run could not start or could not finish; ``exit_code`` is what a command exits with for it."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class RunSummary:
    frames: int
    faces_per_frame: float
    processing_fps: float  # frames / seconds spent in the pipeline (detect … pose)
    wall_fps: float  # frames / wall-clock seconds including decode, drawing and writing
    provider: str
    skipped_frames: int
    stage_ms: dict[str, float]  # mean milliseconds per frame per pipeline stage
    source: ReadReport | None = None  # how completely the source was read (None: not reported)
    non_finite_frames: int = 0  # frames where the model's output held NaN or inf

    def warnings(self) -> list[str]:
        """What a user must not miss: frames the source lacked, frames the model could not process."""
        found = [self.source.line()] if self.source is not None and self.source.line() else []
        if self.non_finite_frames:
            found.append(f"model output not finite (NaN or inf) on {self.non_finite_frames} of {self.frames} "
                         f"frames: no face could be tracked there (a broken model or export?)")
        return found

    def lines(self) -> list[str]:
        stages = ", ".join(f"{k} {v:.2f}" for k, v in self.stage_ms.items())
        return [f"frames: {self.frames} (skipped corrupt: {self.skipped_frames})",
                *(f"warning: {w}" for w in self.warnings()),
                f"faces per frame: {self.faces_per_frame:.2f}",
                f"processing: {self.processing_fps:.1f} frames/s ({self.wall_fps:.1f} frames/s wall clock, "
                f"with decoding, drawing and writing)",
                f"provider: {self.provider}",
                f"ms per frame by stage: {stages}"]


def check_outputs(options: RunOptions) -> None:
    """Refuse outputs before any is opened: a folder (opening the CSV first would leave it empty when the
    video then fails), a video container we do not write, a folder that is missing or not writable, the
    source itself (by path, symlink or hard link), two outputs that are one file, and an existing file
    unless ``options.overwrite`` — opening an output truncates it, so this is the last line of defence."""
    files = options.outputs.files()
    for path in files:
        if path.is_dir():
            raise HeadlessError(f"output {path} is a folder; name a file to write")
    if options.outputs.video is not None:
        try:
            container_for(options.outputs.video)
        except RecordingError as exc:
            raise HeadlessError(str(exc)) from exc
    for path in files:
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.is_dir():
            raise HeadlessError(f"output folder does not exist: {folder}")
        if not os.access(folder, os.W_OK):
            raise HeadlessError(f"output folder is not writable: {folder}")
    target = parse_source(options.source)
    if isinstance(target, Path):  # the gravest mistake is named first, whatever the order of the outputs
        check_not_sources([target], files, "choose another output name")
    seen: set[FileIdentity] = set()
    for path in files:
        identity = file_identity(path)
        if identity in seen:
            raise HeadlessError(f"two outputs would be the same file: {path}")
        seen.add(identity)
        if path.exists() and not options.overwrite:
            raise HeadlessError(f"output {path} already exists; overwriting was not asked for")


#: A file as the file system knows it (see :func:`file_identity`).
FileIdentity = tuple[int, int] | Path


def file_identity(path: Path) -> FileIdentity:
    """What makes two paths one file: device and inode (equal through symlinks and hard links), or the
    resolved name for a file that does not exist yet (two such names are one file once written)."""
    try:
        stat = os.stat(path)
    except OSError:
        return path.resolve()
    return stat.st_dev, stat.st_ino


def check_not_sources(sources: Iterable[Path], outputs: Iterable[Path], hint: str) -> None:
    """Refuse the first output that is one of ``sources`` (same file through symlinks and hard links).

    One lookup per output against a set of the sources' identities, so a batch of thousands of videos
    checks every planned output against every input without comparing each pair. ``hint`` ends the
    message: what the caller's user should change.
    """
    known = {file_identity(source): source for source in sources}
    for path in outputs:
        source = known.get(file_identity(path))
        if source is not None:
            raise HeadlessError(f"output {path} is the source video {source}; {hint}")


def check_options(options: RunOptions) -> None:
    """Every option a run can check without opening a file (:meth:`RunOptions.check`), as HeadlessError."""
    try:
        options.check()
    except ValueError as exc:
        raise HeadlessError(str(exc)) from exc


def run(options: RunOptions, progress: bool = True) -> RunSummary:
    """One whole run: check every option (the stream host looked up) and the outputs, open the source
    while the model loads, :func:`process_video`; raises :class:`HeadlessError`, a bad source before a
    bad model. Nothing is created or truncated before the checks pass.

    The model loads and the face detector is built on two more threads because all three wait mostly
    in native code that releases the GIL (ONNX Runtime building its session, MediaPipe its graphs,
    FFmpeg probing and opening the file): on the 2-core project machine the model's thread made the
    start-up 20-30 ms shorter, the detector's about 20 ms more (0.36 -> 0.34 s to the first frame)."""
    check_options(options)
    check_outputs(options)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="start-up") as loader:
        loading = loader.submit(load_model, options.model, device=options.device, precision=options.precision)
        building = loader.submit(make_detector, options.pipeline.detector)
        try:
            stream = _open_source(options.source)
        except HeadlessError:
            _discard(building)
            raise
        try:
            model = loading.result()
        except ModelError as exc:
            stream.release()
            _discard(building)
            kind = "device problem" if isinstance(exc, DeviceError) else "invalid model"
            raise HeadlessError(f"{kind}: {exc}") from exc
        detector = building.result()
    return _process_stream(stream, model, options, progress, detector)


def _discard(building: Future) -> None:
    """Close the detector a failed start-up built (whatever building it raised: the start-up's own error
    is the one to report)."""
    with contextlib.suppress(Exception):
        close_detector(building.result())


def process_video(options: RunOptions, model: LandmarkModel, progress: bool = True) -> RunSummary:
    """Track ``options.source`` with an already-loaded ``model`` into ``options``' sinks; raises
    :class:`HeadlessError`.

    No safety checks on the output files here (callers decide: :func:`run` checks them, a batch
    writes temporary names); the options themselves are checked.
    """
    check_options(options)
    return _process_stream(_open_source(options.source), model, options, progress)


def _open_source(source: str) -> VideoSource:
    """The source opened, a file only when it really is a video or image (:mod:`core.io.probe`)."""
    try:
        return open_video(source)
    except SourceError as exc:
        raise HeadlessError(str(exc)) from exc


def _process_stream(stream: VideoSource, model: LandmarkModel, options: RunOptions, progress: bool,
                    detector: FaceDetector | None = None) -> RunSummary:
    """:func:`process_video` on a source already opened (released here, whatever happens), with
    ``detector`` already built for ``options`` or None (built here)."""
    info = stream.info
    session = Session(FramePipeline(model, options.pipeline, detector), DrawOptions(), show=False)
    run_start = session.run_start(info.name, info.fps, (info.width, info.height), stream.timestamps)
    try:
        for sink in run_sinks(options.outputs, options.sinks):
            try:
                session.open_sink(sink, run_start)
            except (RecordingError, OSError) as exc:
                raise HeadlessError(f"cannot write output: {exc}") from exc
            except ValueError as exc:  # a stream target that stopped resolving since it was checked
                raise HeadlessError(str(exc)) from exc
        return _loop(stream, session, options.max_frames, progress, model.provider)
    finally:
        stream.release()
        with contextlib.suppress(RecordingError, OSError):  # an error elsewhere: still finalise what was written
            session.close_sinks()
        session.close()
        session.pipeline.close()


def _loop(stream: VideoSource, session: Session, max_frames: int | None, progress: bool, provider: str) -> RunSummary:
    """Decode (thread) → process and draw (here) → sinks (the session's writer thread), in order; then
    the sinks are closed with how completely the source was read, and the summary."""
    info = stream.info
    total = min(info.frame_count, max_frames) if info.frame_count and max_frames else (max_frames or info.frame_count)
    frames = faces = non_finite = 0
    started = time.perf_counter()
    try:
        with tqdm(total=total, desc=f"processing {Path(info.name).name}", unit="frame", disable=not progress) as bar, \
                contextlib.closing(prefetch(stream, QUEUE_DEPTH, name="decoder")) as frames_in:
            for frame in frames_in:
                result = session.process(frame).result
                frames += 1
                faces += len(result.faces)
                non_finite += result.non_finite > 0
                if (failed := session.failure()) is not None:
                    raise failed[1]
                bar.update(1)
                if max_frames and frames >= max_frames:
                    break
        report = stream.report()
        session.close_sinks(report.sidecar())
    except (RecordingError, OSError) as exc:
        # The recorder's message carries the one frame count that matters: frames fully written.
        raise HeadlessError(f"writing output failed: {exc}", exit_code=3) from exc
    wall = time.perf_counter() - started
    if frames == 0:
        raise HeadlessError(f"no frame could be read from {info.name}")
    stages = session.stage_seconds  # complete now: closing the sinks waited for the writer thread
    busy = sum(stages.values())
    return RunSummary(frames, faces / frames, frames / busy if busy else 0.0, frames / wall, provider,
                      report.missing, {k: 1000 * v / frames for k, v in stages.items()}, report, non_finite)
