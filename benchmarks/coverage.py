"""Coverage: on how many frames is a face found and tracked, per detector choice — and what it costs.

    python -m benchmarks.coverage [--model FILE] [--video CLIP ...] [--face-px 40]

Clips: the shared clips as they are, and a *small-face* clip made from the first one honestly: every
frame scaled down (area interpolation) so its face is about ``--face-px`` pixels wide and pasted into
the middle of a black frame of the original size (a person across a room, on a stage). The face width
is measured, not assumed: MediaPipe's full-range box on the scaled frames. A clip of the shared clips
one after the other, the second framed so its face lands where the first one's was (a shot cut onto
another person in the same place), counts the track ids the pipeline hands out: one per shot is right.

Rows: our pipeline (detect + track, :class:`core.pipeline.FramePipeline`) with each MediaPipe choice of
``core.detection.DETECTORS`` (``auto`` = short range, full range when it finds nothing), and MediaPipe's
own detectors run alone on every frame. Coverage = frames with at least one face / frames. Time = mean
milliseconds per frame of the whole pipeline (or of the detector alone), measured in the same run, so
compare the ratios (the rows run in turn on each frame, so a load change hits them all alike).
"""
from __future__ import annotations

import logging
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from tqdm import tqdm

from benchmarks.reporting import Section, append_section, benchmark_parser, command_line, markdown_table
from core.paths import SHARED_VIDEOS
from core.detection import MediaPipeDetector, calibrated_box
from core.pipeline import FramePipeline, PipelineConfig
from core.runtime import LandmarkModel, ModelError, load_model
from core.io.video import SourceError, VideoSource

MODULE = "benchmarks.coverage"
DEFAULT_VIDEOS = (SHARED_VIDEOS / "pyfeat_WolfgangLanger_Pexels.mp4", SHARED_VIDEOS / "pyfeat_single_face.mp4")
PIPELINE_DETECTORS = ("short", "full", "auto")


def read_frames(path: Path, limit: int | None = None) -> tuple[list[np.ndarray], float]:
    """Decoded BGR frames of a clip (at most ``limit``) and its frame rate."""
    with VideoSource(str(path)) as stream:
        fps = stream.info.fps
        frames = [f.image for _, f in zip(range(limit or sys.maxsize), stream)]
    if not frames:
        raise SourceError(f"no frame could be read from {path}")
    return frames, fps


def write_clip(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    """Frames to an MP4 (OpenCV's mp4v) at ``fps``; all frames must share one size."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise SourceError(f"cannot write {path}")
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def shrink_into_frame(frame: np.ndarray, scale: float) -> np.ndarray:
    """``frame`` scaled by ``scale`` and pasted centred into a black frame of its own size."""
    height, width = frame.shape[:2]
    small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.zeros_like(frame)
    y, x = (height - small.shape[0]) // 2, (width - small.shape[1]) // 2
    canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    return canvas


def small_face_scale(frames: list[np.ndarray], face_px: float) -> float:
    """The scale that makes the clip's face ``face_px`` wide: its median full-range box width on a
    sample of the original frames, divided into ``face_px``."""
    detector = MediaPipeDetector(full_range=True)
    widths = [d[0].box.width for d in (detector.detect(f) for f in frames[::10]) if d]
    detector.close()
    if not widths:
        raise RuntimeError("no face found in the source clip to scale")
    return face_px / float(np.median(widths))


def make_small_face_clip(source: Path, out: Path, face_px: float = 40.0, limit: int | None = None) -> tuple[Path, float]:
    """Write the small-face version of ``source`` to ``out``; returns it and the face width in pixels
    measured with MediaPipe full range on the written clip's first frames."""
    frames, fps = read_frames(source, limit)
    scale = small_face_scale(frames, face_px)
    write_clip(out, [shrink_into_frame(f, scale) for f in frames], fps)
    detector = MediaPipeDetector(full_range=True)
    written, _ = read_frames(out, 30)
    widths = [d[0].box.width for d in (detector.detect(f) for f in written) if d]
    detector.close()
    return out, float(np.median(widths)) if widths else float("nan")


def make_cut_clip(sources: list[Path], out: Path, limit: int | None = None) -> tuple[Path, int]:
    """The clips one after the other: hard cuts onto another person. Each following clip is scaled and
    shifted so its first face lands where the previous clip's last face was — the hard case, two
    similarly framed shots, where a tracker would otherwise follow the face across the cut. Returns
    the file and the index of the first frame after the first cut."""
    detector = MediaPipeDetector()
    frames, fps = read_frames(sources[0], limit)
    first_after = len(frames)
    height, width = frames[0].shape[:2]
    for source in sources[1:]:
        shot = read_frames(source, limit)[0]
        before, after = (detector.detect(f) for f in (frames[-1], shot[0]))
        if not before or not after:
            raise RuntimeError(f"no face to align at the cut into {source.name}")
        a, b = calibrated_box(before[0]), calibrated_box(after[0])
        scale = a.size / b.size
        matrix = np.float32([[scale, 0, a.center[0] - scale * b.center[0]],
                             [0, scale, a.center[1] - scale * b.center[1]]])
        frames += [cv2.warpAffine(f, matrix, (width, height)) for f in shot]
    detector.close()
    return write_clip(out, frames, fps), first_after


@dataclass
class Runner:
    """One row: something that looks for faces frame by frame, with its tallies."""

    label: str
    step: Callable[[np.ndarray, float], set[int]]  # frame, timestamp -> ids of the faces found
    covered: int = 0
    seconds: float = 0.0
    ids: set[int] = field(default_factory=set)


def pipeline_runner(model: LandmarkModel, detector: str) -> Runner:
    pipeline = FramePipeline(model, PipelineConfig(detector=detector))
    return Runner(f"ours, --detector {detector}",
                  lambda frame, t: {face.track_id for face in pipeline.process(frame, t).faces})


def detector_runner(full_range: bool) -> Runner:
    detector = MediaPipeDetector(full_range=full_range)
    return Runner(f"MediaPipe {'full' if full_range else 'short'} range alone",
                  lambda frame, t: set(range(len(detector.detect(frame)))))


def measure_clip(model: LandmarkModel, frames: list[np.ndarray], fps: float, label: str) -> list[Runner]:
    """Every row on every frame, in turn frame by frame, so a load change on the (shared) machine
    slows all rows alike and their time ratios stay comparable."""
    runners = [pipeline_runner(model, d) for d in PIPELINE_DETECTORS] + [detector_runner(f) for f in (False, True)]
    for index, frame in enumerate(tqdm(frames, desc=label, unit="frame", leave=False)):
        for runner in runners:
            start = time.perf_counter()
            found = runner.step(frame, index / fps)
            runner.seconds += time.perf_counter() - start
            runner.covered += bool(found)
            runner.ids |= found
    return runners


def build_parser():
    p = benchmark_parser(MODULE, __doc__)
    p.add_argument("--video", nargs="+", default=[str(v) for v in DEFAULT_VIDEOS],
                   help="clips to measure; the first one is also shrunk into the small-face clip")
    p.add_argument("--face-px", type=float, default=40.0, help="face width in the small-face clip (default 40)")
    p.add_argument("--frames", type=int, default=None, help="use at most N frames of each clip")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: physical cores)")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    videos = [Path(v) for v in args.video]
    rows, notes = [], []
    try:
        model = load_model(args.model, device="cpu", threads=args.threads)
        with tempfile.TemporaryDirectory() as tmp:
            small, face_px = make_small_face_clip(videos[0], Path(tmp) / "small_face.mp4", args.face_px, args.frames)
            notes.append(f"small-face clip: {videos[0].name} shrunk into a black frame of its size; face "
                         f"{face_px:.0f} px wide (MediaPipe full-range box, median of its first 30 frames)")
            clips = [*videos, small]
            if len(videos) > 1:
                cut, first_after = make_cut_clip(videos, Path(tmp) / "cut.mp4", args.frames)
                clips.append(cut)
            for clip in clips:
                frames, fps = read_frames(clip, None if clip.parent == Path(tmp) else args.frames)
                for runner in measure_clip(model, frames, fps, clip.name):
                    ours = runner.label.startswith("ours")
                    rows.append([clip.name, runner.label, f"{len(frames)}", f"{100 * runner.covered / len(frames):.1f}",
                                 f"{1000 * runner.seconds / len(frames):.2f}", f"{len(runner.ids)}" if ours else "–"])
            if len(videos) > 1:
                notes.append(f"cut.mp4: {' then '.join(v.name for v in videos)}, each shot framed so its face starts "
                             f"where the last shot's face was; first cut before frame {first_after}; one person "
                             f"per shot, so the right id count is {len(videos)}")
    except (ModelError, SourceError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = markdown_table(["clip", "method", "frames", "coverage %", "ms/frame", "track ids"], rows)
    notes.append(f"model: {args.model} ({model.info.name}); ms/frame: whole pipeline for ours, the detector "
                 f"alone for MediaPipe's rows")
    print(table)
    print("\n".join(notes))
    path = append_section(Section("Coverage: frames with a face per detector", command_line(MODULE, argv),
                                  [table], notes), args.results)
    print(f"appended to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
