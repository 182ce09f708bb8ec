"""Process a video file or camera without a window: the engine of ``python main.py --headless``.

It drives the same :class:`core.pipeline.FramePipeline`, drawing and recorder as the app, shows a
tqdm bar, and returns a summary. Every failure a user can cause (bad source, bad model, unwritable
output, disk full) becomes one :class:`HeadlessError` line; outputs written so far stay valid.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from core.draw import DrawOptions, draw_faces
from core.pipeline import FramePipeline, PipelineConfig
from core.recorder import Recorder, RecordingError
from core.runtime import DEFAULT_MODEL_PATH, DeviceError, ModelError, load_model
from core.video import SourceError, VideoSource

log = logging.getLogger(__name__)


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

    def lines(self) -> list[str]:
        stages = ", ".join(f"{k} {v:.2f}" for k, v in self.stage_ms.items())
        return [f"frames: {self.frames} (skipped corrupt: {self.skipped_frames})",
                f"faces per frame: {self.faces_per_frame:.2f}",
                f"processing: {self.processing_fps:.1f} frames/s ({self.wall_fps:.1f} frames/s wall clock, "
                f"with decoding, drawing and writing)",
                f"provider: {self.provider}",
                f"ms per frame by stage: {stages}"]


def output_paths(output: str | None, landmarks: str | None) -> tuple[Path | None, Path | None]:
    """Either path implies the other (OUT.mp4 ↔ OUT.csv); checks the folder is writable up front."""
    if output is None and landmarks is None:
        return None, None
    video = Path(output) if output else Path(landmarks).with_suffix(".mp4")
    table = Path(landmarks) if landmarks else video.with_suffix(".csv")
    for path in (video, table):
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.is_dir():
            raise HeadlessError(f"output folder does not exist: {folder}")
        if not os.access(folder, os.W_OK):
            raise HeadlessError(f"output folder is not writable: {folder}")
    return video, table


def run_headless(source: str, output: str | None = None, landmarks: str | None = None,
                 model_path: str | None = None, device: str = "auto", config: PipelineConfig = PipelineConfig(),
                 max_frames: int | None = None, progress: bool = True) -> RunSummary:
    """Run the pipeline over ``source``, optionally recording; raises :class:`HeadlessError`."""
    video_path, csv_path = output_paths(output, landmarks)
    try:
        stream = VideoSource(source)
    except SourceError as exc:
        raise HeadlessError(str(exc)) from exc
    try:
        model = load_model(model_path or DEFAULT_MODEL_PATH, device=device)
    except DeviceError as exc:
        stream.release()
        raise HeadlessError(f"device problem: {exc}") from exc
    except ModelError as exc:
        stream.release()
        raise HeadlessError(f"invalid model: {exc}") from exc
    pipeline = FramePipeline(model, config)
    info = stream.info
    recorder = None
    if video_path is not None:
        sidecar = {"source": info.name, "model": model.info.name, "model_path": str(model.info.path),
                   "provider": model.provider, "smoothing": config.smoothing, "strategy": config.strategy,
                   "threshold": config.threshold}
        try:
            recorder = Recorder(video_path, csv_path, info.fps, (info.width, info.height), model.info.scheme, sidecar,
                                annotate=False)  # drawn here, with the FPS overlay
        except (RecordingError, OSError) as exc:
            stream.release()
            raise HeadlessError(f"cannot write output: {exc}") from exc
    total = min(info.frame_count, max_frames) if info.frame_count and max_frames else (max_frames or info.frame_count)
    frames = faces = 0
    busy = 0.0
    stage_totals: dict[str, float] = {}
    options = DrawOptions()
    started = time.perf_counter()
    try:
        with tqdm(total=total, desc=f"processing {Path(info.name).name}", unit="frame", disable=not progress) as bar:
            for frame in stream:
                result = pipeline.process(frame.image, frame.timestamp)
                busy += result.total_seconds
                for stage, seconds in result.timings.items():
                    stage_totals[stage] = stage_totals.get(stage, 0.0) + seconds
                frames += 1
                faces += len(result.faces)
                if recorder is not None:
                    fps = frames / busy if busy > 0 else None
                    draw_faces(frame.image, result.faces, model.scheme, options, fps)
                    recorder.write(frame.index, frame.timestamp, frame.image, result.faces)
                bar.update(1)
                if max_frames and frames >= max_frames:
                    break
    except (RecordingError, OSError) as exc:
        raise HeadlessError(f"writing output failed after {frames} frames: {exc} "
                            f"(everything written before stays readable)", exit_code=3) from exc
    finally:
        stream.release()
        if recorder is not None:
            recorder.close()
    wall = time.perf_counter() - started
    if frames == 0:
        raise HeadlessError(f"no frame could be read from {info.name}")
    return RunSummary(frames, faces / frames, frames / busy if busy else 0.0, frames / wall, model.provider,
                      stream.skipped, {k: 1000 * v / frames for k, v in stage_totals.items()})
