"""Coverage: on how many frames is a face found and tracked, per detector choice, how many faces per
frame against MediaPipe Face Mesh — and what it costs.

    python -m benchmarks.coverage [--model FILE] [--video CLIP ...] [--made DIR] [--frames N] [--max-faces N]

Clips: the seven shared clips as they are, and the clips ``tools.make_clips`` derives from them into
``--made DIR`` (made there first when the folder holds none; its docstring and benchmarks/RESULTS.md say
how each is made): faceless stretches, two and three faces side by side, a small face, a cut
between two people (which also counts the track ids handed out: one per shot is right), and from the
shared MERL-RAV photos a turn to profile and back and faces that first appear in profile.

Rows: our pipeline (detect + track, :class:`core.pipeline.FramePipeline`) with each choice of
``core.detection.DETECTORS`` (``auto`` = short range, then full range when no face was accepted),
MediaPipe's own detectors run alone on every frame, and MediaPipe Face Mesh in video mode with
``max_num_faces`` = :data:`MESH_MAX_FACES` (the most faces of any clip but the crowd), or both ours and
Face Mesh at ``--max-faces`` (the crowd: ``--video crowd_6.mp4 --max-faces 6``). Coverage = frames with
at least one face / frames; faces per frame = faces reported / frames; detector runs = frames on which
our pipeline ran a detector (the cost of finding faces). Time = mean milliseconds per
frame of the whole pipeline (or of the detector or Face Mesh alone), measured in the same run, so
compare the ratios (the rows run in turn on each frame, so a load change hits them all alike).
"""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from benchmarks.peers import FaceMeshPeer, mesh_unavailable_reason
from benchmarks.reporting import Section, append_section, benchmark_parser, command_line, markdown_table
from core.detection import DETECTORS, MediaPipeDetector
from core.pipeline import FramePipeline, PipelineConfig
from core.runtime import LandmarkModel, ModelError, load_model
from core.io.video import SourceError
from core.paths import SHARED_DATA, SHARED_VIDEOS
from tools.make_clips import make_all, read_frames

MODULE = "benchmarks.coverage"
SHARED_CLIPS = tuple(sorted(p for p in SHARED_VIDEOS.glob("*") if p.suffix in (".mp4", ".wmv")))
PIPELINE_DETECTORS = DETECTORS
#: Face Mesh looks for this many faces: the most any clip shows (side_by_side_3).
MESH_MAX_FACES = 3


@dataclass
class Runner:
    """One row: something that looks for faces frame by frame, with its tallies."""

    label: str
    step: Callable[[np.ndarray, float], set[int]]  # frame, timestamp -> ids of the faces found
    covered: int = 0
    faces: int = 0
    seconds: float = 0.0
    ids: set[int] = field(default_factory=set)
    detections: int | None = None  # frames on which our pipeline ran its detector (None: not ours)


def pipeline_runner(model: LandmarkModel, detector: str, max_faces: int | None = None) -> Runner:
    config = PipelineConfig(detector=detector)
    if max_faces is not None:
        config = replace(config, tracker=replace(config.tracker, max_faces=max_faces))
    pipeline = FramePipeline(model, config)
    runner = Runner(f"ours, --detector {detector}", lambda frame, t: set(), detections=0)

    def step(frame: np.ndarray, t: float) -> set[int]:
        result = pipeline.process(frame, t)
        runner.detections += result.detected
        return {face.track_id for face in result.faces}

    runner.step = step
    return runner


def detector_runner(full_range: bool) -> Runner:
    detector = MediaPipeDetector(full_range=full_range)
    return Runner(f"MediaPipe {'full' if full_range else 'short'} range alone",
                  lambda frame, t: set(range(len(detector.detect(frame)))))


def mesh_runner(max_faces: int = MESH_MAX_FACES) -> Runner:
    mesh = FaceMeshPeer(max_faces=max_faces)
    return Runner(f"MediaPipe Face Mesh (max_num_faces {max_faces})",
                  lambda frame, t: set(range(len(mesh.faces(frame)))))


def measure_clip(model: LandmarkModel, frames: list[np.ndarray], fps: float, label: str, use_mesh: bool,
                 max_faces: int | None = None) -> list[Runner]:
    """Every row on every frame, in turn frame by frame, so a load change on the (shared) machine
    slows all rows alike and their time ratios stay comparable. ``max_faces``: ours and Face Mesh follow
    at most that many (None: ours its default, Face Mesh :data:`MESH_MAX_FACES`)."""
    runners = [pipeline_runner(model, d, max_faces) for d in PIPELINE_DETECTORS]
    runners += [detector_runner(f) for f in (False, True)]
    runners += [mesh_runner(max_faces or MESH_MAX_FACES)] if use_mesh else []
    for index, frame in enumerate(tqdm(frames, desc=label, unit="frame", leave=False)):
        for runner in runners:
            start = time.perf_counter()
            found = runner.step(frame, index / fps)
            runner.seconds += time.perf_counter() - start
            runner.covered += bool(found)
            runner.faces += len(found)
            runner.ids |= found
    return runners


def build_parser():
    p = benchmark_parser(MODULE, __doc__)
    p.add_argument("--video", nargs="+", type=Path, default=list(SHARED_CLIPS), help="real clips to measure")
    p.add_argument("--made", type=Path, help="folder of tools.make_clips' clips, made there if it holds none")
    p.add_argument("--frames", type=int, default=None, help="use at most N frames of each clip")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: physical cores)")
    p.add_argument("--max-faces", type=int, default=None,
                   help=f"ours and Face Mesh follow at most N faces (default: ours its own, Face Mesh {MESH_MAX_FACES})")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    reason = mesh_unavailable_reason()
    rows, notes = [], [] if reason is None else [f"Face Mesh skipped: {reason}"]
    try:
        model = load_model(args.model, device="cpu", threads=args.threads)
        clips = list(args.video)
        if args.made is not None:
            if not any(args.made.glob("*.mp4")):
                notes += make_all(SHARED_VIDEOS, args.made, data=SHARED_DATA)
            clips += sorted(args.made.glob("*.mp4"))
        for clip in clips:
            frames, fps = read_frames(clip)
            frames = frames[:args.frames]
            for runner in measure_clip(model, frames, fps, clip.name, reason is None, args.max_faces):
                ours = runner.label.startswith("ours")
                rows.append([clip.name, runner.label, f"{len(frames)}", f"{100 * runner.covered / len(frames):.1f}",
                             f"{runner.faces / len(frames):.2f}", f"{1000 * runner.seconds / len(frames):.2f}",
                             f"{len(runner.ids)}" if ours else "–",
                             "–" if runner.detections is None else f"{100 * runner.detections / len(frames):.1f}"])
    except (ModelError, SourceError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = markdown_table(["clip", "method", "frames", "coverage %", "faces / frame", "ms/frame", "track ids",
                            "detector runs % of frames"], rows)
    notes.append(f"model: {args.model} ({model.info.name}); ms/frame: whole pipeline for ours, the detector "
                 f"or Face Mesh alone for MediaPipe's rows")
    print(table)
    print("\n".join(notes))
    path = append_section(Section("Coverage: frames with a face per detector", command_line(MODULE, argv),
                                  [table], notes), args.results)
    print(f"appended to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
