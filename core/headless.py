"""Process a video file or camera without a window: the engine of ``python main.py --headless``.

:func:`process_video` is the loop over one :class:`core.session.Session` with an already-loaded model
(the batch runner calls it once per video); :func:`run_headless` is the CLI around it: it checks the
outputs (never the source, never an existing file without ``overwrite``, a container we can write),
loads the model, and calls it. Decoding, inference + drawing and writing overlap on three threads
(:mod:`core.stages`); frames stay in order and the recorder's per-frame flushing is unchanged.

Every failure a user can cause (bad source, bad model, unwritable output, disk full) becomes one
:class:`HeadlessError` line; outputs written so far stay valid.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from core.draw import DrawOptions
from core.pipeline import FramePipeline, PipelineConfig
from core.io.recorder import RecordingError, container_for
from core.runtime import DEFAULT_MODEL_PATH, DeviceError, LandmarkModel, ModelError, load_model
from core.session import OutputPaths, Processed, Session
from core.io.table import DEFAULT_GROUPS, WITH_UNCERTAINTY
from core.stages import OrderedWriter, prefetch
from core.io.streaming import resolve_target
from core.io.probe import open_video
from core.io.video import ReadReport, SourceError, VideoSource, parse_source

log = logging.getLogger(__name__)

#: Frames decoded ahead of inference and processed frames waiting for the writer.
QUEUE_DEPTH = 4


class HeadlessError(RuntimeError):
    """A run could not start or could not finish; ``exit_code`` is what the CLI returns."""

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


def output_paths(output: str | None, landmarks: str | None) -> OutputPaths:
    """``--output V`` writes V, V's CSV and V's JSON; ``--landmarks C`` alone writes C and C's JSON only.

    Checks up front that no output names a folder (opening the CSV first would leave it empty when the
    video then fails), that the video container is one we write and that each folder is writable.
    """
    video = Path(output) if output else None
    table = Path(landmarks) if landmarks else (video.with_suffix(".csv") if video else None)
    outputs = OutputPaths(table, table.with_suffix(".json") if table else None, video)
    for path in outputs.files():
        if path.is_dir():
            raise HeadlessError(f"output {path} is a folder; name a file to write")
    if video is not None:
        try:
            container_for(video)
        except RecordingError as exc:
            raise HeadlessError(str(exc)) from exc
    for path in outputs.files():
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.is_dir():
            raise HeadlessError(f"output folder does not exist: {folder}")
        if not os.access(folder, os.W_OK):
            raise HeadlessError(f"output folder is not writable: {folder}")
    return outputs


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


def check_outputs(source: str, outputs: OutputPaths, overwrite: bool = False) -> None:
    """Refuse outputs that are the source (by path, symlink or hard link), repeat each other, or exist
    already (unless ``overwrite``): opening an output truncates it, so this is the last line of defence."""
    target = parse_source(source)
    files = outputs.files()
    if isinstance(target, Path):  # the gravest mistake is named first, whatever the order of the outputs
        check_not_sources([target], files, "choose another output name")
    seen: set[FileIdentity] = set()
    for path in files:
        identity = file_identity(path)
        if identity in seen:
            raise HeadlessError(f"two outputs would be the same file: {path}")
        seen.add(identity)
        if path.exists() and not overwrite:
            raise HeadlessError(f"output {path} already exists; pass --overwrite to replace it")


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


def process_video(source: str, model: LandmarkModel, config: PipelineConfig, outputs: OutputPaths, *,
                  max_frames: int | None = None, progress: bool = True, stream_to: str | None = None,
                  uncertainty_columns: bool = False) -> RunSummary:
    """Track ``source`` with ``model`` and write ``outputs``; raises :class:`HeadlessError`.

    No safety checks on ``outputs`` here (callers decide: :func:`run_headless` checks them, a batch
    writes temporary names); the video and sidecar need the landmarks CSV. ``stream_to``: ``HOST:PORT``
    to send every frame's faces to as OSC (``core.io.streaming``); ``uncertainty_columns``: add each
    point's uncertainty to the CSV.
    """
    _check_max_frames(max_frames)
    if outputs.landmarks is None and (outputs.video or outputs.sidecar):
        raise HeadlessError("a video or sidecar output needs a landmarks CSV output too")
    return _process_stream(_open_source(source), model, config, outputs, max_frames, progress, stream_to,
                           uncertainty_columns)


def _open_source(source: str) -> VideoSource:
    """The source opened, a file only when it really is a video or image (:mod:`core.io.probe`)."""
    try:
        return open_video(source)
    except SourceError as exc:
        raise HeadlessError(str(exc)) from exc


def _process_stream(stream: VideoSource, model: LandmarkModel, config: PipelineConfig, outputs: OutputPaths,
                    max_frames: int | None, progress: bool, stream_to: str | None,
                    uncertainty_columns: bool) -> RunSummary:
    """:func:`process_video` on a source already opened (released here, whatever happens)."""
    info = stream.info
    session = Session(FramePipeline(model, config), DrawOptions(), show=False)
    try:
        if stream_to is not None:  # before the recording: a stream that cannot start must not leave outputs
            try:
                session.start_streaming(stream_to)
            except ValueError as exc:
                raise HeadlessError(str(exc)) from exc
        if outputs.landmarks is not None:
            try:
                session.start_recording(outputs, info.name, info.fps, (info.width, info.height),
                                        WITH_UNCERTAINTY if uncertainty_columns else DEFAULT_GROUPS)
            except (RecordingError, OSError) as exc:
                raise HeadlessError(f"cannot write output: {exc}") from exc
            session.recorder.annotate(timestamps=stream.timestamps)
        return _loop(stream, session, max_frames, progress, model.provider)
    finally:
        stream.release()
        session.stop_streaming()
        session.pipeline.close()


def _check_max_frames(max_frames: int | None) -> None:
    if max_frames is not None and max_frames < 1:
        raise HeadlessError(f"--max-frames must be at least 1, got {max_frames}")


def _loop(stream: VideoSource, session: Session, max_frames: int | None, progress: bool, provider: str) -> RunSummary:
    """Decode (thread) → process and draw (here) → record (thread), in order; then the summary."""
    info = stream.info
    total = min(info.frame_count, max_frames) if info.frame_count and max_frames else (max_frames or info.frame_count)
    frames = faces = non_finite = 0
    busy = 0.0
    stage_totals: dict[str, float] = {}
    started = time.perf_counter()
    writer: OrderedWriter[Processed] = OrderedWriter(session.record, QUEUE_DEPTH, name="recorder")
    try:
        with tqdm(total=total, desc=f"processing {Path(info.name).name}", unit="frame", disable=not progress) as bar, \
                contextlib.closing(prefetch(stream, QUEUE_DEPTH, name="decoder")) as frames_in:
            for frame in frames_in:
                processed = session.process(frame)
                result = processed.result
                busy += result.total_seconds
                for stage, seconds in result.timings.items():
                    stage_totals[stage] = stage_totals.get(stage, 0.0) + seconds
                frames += 1
                faces += len(result.faces)
                non_finite += result.non_finite > 0
                writer.put(processed)
                bar.update(1)
                if max_frames and frames >= max_frames:
                    break
        writer.close()
        report = stream.report()
        if session.recorder is not None:
            session.recorder.annotate(**report.sidecar())
        session.stop_recording()
    except (RecordingError, OSError) as exc:
        # The recorder's message carries the one frame count that matters: frames fully written.
        raise HeadlessError(f"writing output failed: {exc}", exit_code=3) from exc
    finally:
        writer.close(check=False)
        if session.recorder is not None:  # an error elsewhere: still finalise what was recorded
            with contextlib.suppress(RecordingError, OSError):
                session.stop_recording()
    wall = time.perf_counter() - started
    if frames == 0:
        raise HeadlessError(f"no frame could be read from {info.name}")
    return RunSummary(frames, faces / frames, frames / busy if busy else 0.0, frames / wall, provider,
                      report.missing, {k: 1000 * v / frames for k, v in stage_totals.items()}, report, non_finite)


def run_headless(source: str, output: str | None = None, landmarks: str | None = None,
                 model_path: str | None = None, device: str = "auto", config: PipelineConfig = PipelineConfig(),
                 max_frames: int | None = None, progress: bool = True, overwrite: bool = False,
                 stream_to: str | None = None, uncertainty_columns: bool = False) -> RunSummary:
    """The CLI's run: check every option (the stream host looked up) and the outputs, load the model,
    :func:`process_video`; raises :class:`HeadlessError`. Nothing is created or truncated before the checks pass."""
    _check_max_frames(max_frames)
    if stream_to is not None:
        try:
            resolve_target(stream_to)
        except ValueError as exc:
            raise HeadlessError(str(exc)) from exc
    outputs = output_paths(output, landmarks)
    check_outputs(source, outputs, overwrite)
    stream = _open_source(source)  # opened once, before the model: a bad source is reported cheaply
    try:
        model = load_model(model_path or DEFAULT_MODEL_PATH, device=device)
    except ModelError as exc:
        stream.release()
        kind = "device problem" if isinstance(exc, DeviceError) else "invalid model"
        raise HeadlessError(f"{kind}: {exc}") from exc
    return _process_stream(stream, model, config, outputs, max_frames, progress, stream_to, uncertainty_columns)
