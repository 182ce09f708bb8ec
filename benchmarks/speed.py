"""Speed, side by side in one run: the model alone, then the whole tracker against its peers.

    python -m benchmarks.speed [--model FILE] [--checkpoint best.pt] [--video CLIP] [--frames N]

1. Model only: crops/s at batch 1 and 32 of the ONNX model (ONNX Runtime CPU, ``--threads``) and, with
   ``--checkpoint`` (needs torch: the ``train`` extra), of the same network in torch eager mode;
   warm-up, then the median of many calls.
   The engines alternate round by round, so a noisy neighbour slows all of them alike.
2. End to end on one real clip: our FramePipeline (detect once, then track from landmarks, Kalman,
   head pose) vs MediaPipe Face Mesh (video mode) vs dlib (HOG detector + 68-point predictor on every
   frame; it has no tracking mode). The clip is decoded once into memory; each pass runs every
   tracker over all of it from a fresh start, one tracker at a time (interleaving frame by frame
   would let one tracker's idle worker threads slow the next), in an order rotated per pass.
   Latency = a tracker's time on a decoded BGR frame (its own colour conversion included);
   frames/s = 1 / mean latency; ratio = our frames/s / the peer's.
3. Where our time goes: mean ms per frame for decoding, each pipeline stage, and drawing.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnxruntime as ort
from tqdm import tqdm

from benchmarks.peers import DlibPeer, FaceMeshPeer, dlib_unavailable_reason, mesh_unavailable_reason
from benchmarks.reporting import (Section, append_section, benchmark_parser, command_line,
                                  markdown_table)
from core.paths import REPO_ROOT, SHARED_VIDEOS
from core.detection import calibrated_box, make_detector
from core.draw import DrawOptions, draw_faces
from core.geometry import Box, crop_from_box, warp_to_crop
from core.pipeline import STAGES, FramePipeline, FrameResult, PipelineConfig
from core.runtime import LandmarkModel, ModelError, load_model
from core.io.video import SourceError, VideoSource

log = logging.getLogger("benchmarks.speed")

SHARED_VIDEO = SHARED_VIDEOS / "pyfeat_WolfgangLanger_Pexels.mp4"
#: The shared clip where the project's data sits beside the repository, else the bundled demo clip,
#: so the command works as written on a fresh clone.
DEFAULT_VIDEO = SHARED_VIDEO if SHARED_VIDEO.is_file() else REPO_ROOT / "assets" / "demo.mp4"
#: Batch sizes of the model-only table: one face (the app) and a batch (offline processing).
BATCHES = (1, 32)
#: Pipeline stage names as a reader of the table understands them.
STAGE_LABELS = {"detect": "detect (every few frames)", "crop": "crop (window resize or warp)", "infer": "inference (ONNX)",
                "decode": "aggregate anchors + map back", "smooth": "smoothing (Kalman) + tracking",
                "pose": "head pose (solvePnP)"}


@dataclass
class Engine:
    """One way of running the network on a batch of uint8 BGR crops."""

    name: str
    run: Callable[[np.ndarray], object]
    times: dict[int, list[float]] = field(default_factory=dict)


def real_crops(video: Path, model: LandmarkModel, count: int) -> np.ndarray:
    """``count`` face crops cut from the clip's first frames by the run-time detector and crop policy
    (the frame's centre where no face is found), so the model sees what it sees in the app."""
    detector = make_detector("auto")
    size, margin = model.info.input_size, model.info.crop_margin
    crops = []
    with VideoSource(str(video)) as stream:
        for frame in stream:
            found = detector.detect(frame.image)
            h, w = frame.image.shape[:2]
            box = calibrated_box(found[0], detector.name) if found else Box(w / 4, h / 4, 3 * w / 4, 3 * h / 4)
            crops.append(warp_to_crop(frame.image, crop_from_box(box, size, margin), size))
            if len(crops) == count:
                break
    if not crops:
        raise SourceError(f"no frame could be read from {video}")
    while len(crops) < count:
        crops += crops[:count - len(crops)]
    return np.stack(crops)


class SetupError(RuntimeError):
    """Something the benchmark needs is missing or unreadable; the message says what, in one line."""


def torch_engine(checkpoint: Path, threads: int, input_size: int) -> Engine:
    """The checkpoint in torch eager mode (``training.predictors.TorchPredictor``), on ``threads`` CPU threads.

    torch is imported here, only for ``--checkpoint``: the ``bench`` extra does not install it. Its rows
    compare engines on one network, so a checkpoint of another input size than the ONNX model is refused.
    """
    try:
        import torch

        from training.checkpoint import CheckpointError
        from training.predictors import TorchPredictor
    except ImportError as exc:
        raise SetupError(f"--checkpoint needs torch ({exc}); install the train extra or leave --checkpoint out")
    torch.set_num_threads(threads)
    try:
        predictor = TorchPredictor.from_checkpoint(checkpoint, "cpu")
    except CheckpointError as exc:
        raise SetupError(str(exc)) from exc
    if predictor.input_size != input_size:
        raise SetupError(f"{checkpoint} is a {predictor.input_size} px network and --model a {input_size} px one: "
                         "pass the checkpoint the model was exported from")
    return Engine(f"torch {torch.__version__} eager CPU, {threads} thread{'s' if threads > 1 else ''}",
                  predictor.predict)


def time_engines(engines: list[Engine], crops: np.ndarray, rounds: int, calls_batch1: int, warmup: int) -> None:
    """Fill ``engine.times[batch]`` with per-call seconds; engines and batch sizes alternate each round."""
    batches = {b: crops[:b] for b in BATCHES}
    for engine in engines:
        for batch in batches.values():
            for _ in range(warmup):
                engine.run(batch)
    jobs = [(engine, b) for engine in engines for b in BATCHES]
    for round_index in tqdm(range(rounds), desc="model only", unit="round", leave=False):
        shift = round_index % len(jobs)
        for engine, b in jobs[shift:] + jobs[:shift]:
            for _ in range(calls_batch1 if b == 1 else 1):
                start = time.perf_counter()
                engine.run(batches[b])
                engine.times.setdefault(b, []).append(time.perf_counter() - start)


def model_table(engines: list[Engine]) -> str:
    rows = []
    for engine in engines:
        for b in BATCHES:
            median = float(np.median(engine.times[b]))
            rows.append([engine.name, str(b), str(len(engine.times[b])), f"{1000 * median:.2f}", f"{b / median:.0f}"])
    return markdown_table(["engine", "batch", "calls", "median ms / call", "crops/s"], rows)


@dataclass
class Contender:
    """One tracker of the end-to-end race. ``start()`` returns a fresh tracker (new state) whose call
    ``(frame BGR, timestamp)`` returns the number of faces found."""

    name: str
    start: Callable[[], Callable[[np.ndarray, float], int]]
    latencies: list[float] = field(default_factory=list)
    frames_with_face: int = 0


class OurTracker:
    """Our FramePipeline with its default settings (tracking, Kalman, head pose); keeps the last
    result so the race can read its stage timings and draw its faces."""

    def __init__(self, model: LandmarkModel) -> None:
        self.pipeline = FramePipeline(model, PipelineConfig())
        self.last: FrameResult | None = None

    def __call__(self, image: np.ndarray, timestamp: float) -> int:
        self.last = self.pipeline.process(image, timestamp)
        return len(self.last.faces)


def build_contenders(model: LandmarkModel, peers: list[str]) -> tuple[list[Contender], list[str]]:
    """Ours first, then each requested peer that can run; the notes say which were skipped and why."""
    contenders = [Contender(f"ours ({model.info.name}, tracking)", lambda: OurTracker(model))]
    notes = []
    if "mediapipe" in peers:
        reason = mesh_unavailable_reason()
        if reason:
            notes.append(f"MediaPipe Face Mesh skipped: {reason}")
        else:
            def start_mesh() -> Callable[[np.ndarray, float], int]:
                mesh = FaceMeshPeer()
                return lambda image, t: int(mesh.landmarks(image) is not None)

            contenders.append(Contender(f"{FaceMeshPeer.name} (video mode)", start_mesh))
    if "dlib" in peers:
        reason = dlib_unavailable_reason()
        if reason:
            notes.append(f"dlib skipped: {reason}")
        else:
            peer = DlibPeer()
            contenders.append(Contender(f"{peer.name} (detects every frame)",
                                        lambda: lambda image, t: int(peer.landmarks(image) is not None)))
    return contenders, notes


@dataclass
class Breakdown:
    """Where our time goes: seconds summed over the counted frames."""

    decode: float = 0.0
    stages: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    draw: float = 0.0
    frames: int = 0


def decode_clip(video: Path, max_frames: int | None) -> tuple[list[tuple[float, np.ndarray]], list[float]]:
    """The clip's frames in memory (every tracker gets the same pixels) and each frame's decode time."""
    frames, seconds = [], []
    with VideoSource(str(video)) as stream:
        while max_frames is None or len(frames) < max_frames:
            start = time.perf_counter()
            frame = stream.read()
            if frame is None:
                break
            seconds.append(time.perf_counter() - start)
            frames.append((frame.timestamp, frame.image))
    return frames, seconds


def race(frames: list[tuple[float, np.ndarray]], contenders: list[Contender], scheme: str, passes: int,
         warmup: int) -> Breakdown:
    """Each pass runs every contender over the whole clip from a fresh start, one after the other, in
    an order rotated per pass: a tracker runs alone (no other tracker's threads in its way) and slow
    drifts of the machine's load fall on all of them alike. The first ``warmup`` frames of each
    pass (graph initialisation, first detection) run but are not counted."""
    breakdown = Breakdown()
    options = DrawOptions()
    with tqdm(total=passes * len(contenders) * len(frames), desc="end to end", unit="frame", leave=False) as bar:
        for index in range(passes):
            shift = index % len(contenders)
            for contender in contenders[shift:] + contenders[:shift]:
                track = contender.start()
                for k, (timestamp, image) in enumerate(frames):
                    start = time.perf_counter()
                    found = track(image, timestamp)
                    elapsed = time.perf_counter() - start
                    bar.update(1)
                    if k < warmup:
                        continue
                    contender.latencies.append(elapsed)
                    contender.frames_with_face += found > 0
                    if isinstance(track, OurTracker):
                        breakdown.frames += 1
                        for stage, seconds in track.last.timings.items():
                            breakdown.stages[stage] += seconds
                        canvas = image.copy()
                        start = time.perf_counter()
                        draw_faces(canvas, track.last.faces, scheme, options, None)
                        breakdown.draw += time.perf_counter() - start
    return breakdown


def race_table(contenders: list[Contender]) -> str:
    ours_fps = 1.0 / float(np.mean(contenders[0].latencies))
    rows = []
    for c in contenders:
        lat = np.asarray(c.latencies)
        fps = 1.0 / float(lat.mean())
        rows.append([c.name, str(len(lat)), f"{fps:.1f}", f"{1000 * np.percentile(lat, 50):.2f}",
                     f"{1000 * np.percentile(lat, 95):.2f}", f"{100 * c.frames_with_face / len(lat):.0f}",
                     "—" if c is contenders[0] else f"{ours_fps / fps:.2f}x"])
    return markdown_table(["tracker", "frames", "frames/s", "p50 ms", "p95 ms", "frames with a face %",
                           "ours / this"], rows)


def breakdown_table(b: Breakdown) -> str:
    ms = {"decode the video frame (OpenCV)": b.decode}
    ms.update({STAGE_LABELS.get(k, k): v for k, v in b.stages.items()})
    ms["draw the overlay"] = b.draw
    total = sum(ms.values())
    rows = [[name, f"{1000 * s / b.frames:.2f}", f"{100 * s / total:.0f}"] for name, s in ms.items()]
    rows.append(["total", f"{1000 * total / b.frames:.2f}", "100"])
    return markdown_table(["our stage", "mean ms / frame", "share %"], rows)


def build_parser() -> argparse.ArgumentParser:
    p = benchmark_parser("benchmarks.speed", __doc__)
    p.add_argument("--checkpoint",
                   help="training checkpoint of the same network, for torch eager rows (needs torch; default: none)")
    p.add_argument("--video", default=str(DEFAULT_VIDEO), help="clip for the end-to-end race")
    p.add_argument("--frames", type=int, help="stop the race after this many frames (default: the whole clip)")
    p.add_argument("--warmup-frames", type=int, default=10, help="first frames of each pass not counted")
    p.add_argument("--passes", type=int, default=2,
                   help="passes over the clip; each runs every tracker in turn, in a rotated order")
    p.add_argument("--threads", type=int,
                   help="fixed ONNX Runtime intra-op threads (default: the runtime's own choice, as in the app)")
    p.add_argument("--torch-threads", type=int,
                   help="CPU threads of torch (default: --threads, else 1; on a busy machine 1 avoids OpenMP "
                        "spin-wait stalls that make multi-threaded torch seconds per call)")
    p.add_argument("--rounds", type=int, default=10,
                   help="model-only rounds; each makes --calls batch-1 calls and one batch-32 call per engine")
    p.add_argument("--calls", type=int, default=10, help="batch-1 calls per engine per round")
    p.add_argument("--warmup-calls", type=int, default=3, help="untimed calls per engine and batch size first")
    p.add_argument("--peers", nargs="*", default=["mediapipe", "dlib"], choices=["mediapipe", "dlib"],
                   help="peers in the race (none: only ours)")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        model = load_model(args.model, device="cpu", threads=args.threads)
        crops = real_crops(Path(args.video), model, max(BATCHES))
    except (ModelError, SourceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    threads = f"{args.threads} threads" if args.threads else "adaptive threads"
    engines = [Engine(f"ONNX Runtime {ort.__version__} CPU, {threads}", model.run)]
    if args.checkpoint:
        try:
            engines.append(torch_engine(Path(args.checkpoint), args.torch_threads or args.threads or 1,
                                        model.info.input_size))
        except SetupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    time_engines(engines, crops, args.rounds, args.calls, args.warmup_calls)
    models = model_table(engines)
    print(f"Model only: {model.info.name} ({Path(args.model).name}), {model.info.num_anchors} anchors")
    print(models)

    contenders, notes = build_contenders(model, args.peers)
    frames, decode_seconds = decode_clip(Path(args.video), args.frames)
    breakdown = race(frames, contenders, model.info.scheme, args.passes, args.warmup_frames)
    if breakdown.frames == 0:
        print(f"error: no frame after the {args.warmup_frames} warm-up frames of {args.video}", file=sys.stderr)
        return 2
    breakdown.decode = float(np.mean(decode_seconds[args.warmup_frames:])) * breakdown.frames
    races, stages = race_table(contenders), breakdown_table(breakdown)
    print(f"\nEnd to end on {Path(args.video).name} ({breakdown.frames} frames counted)")
    print(races)
    print("\nWhere our time goes")
    print(stages)
    notes += [f"model: {args.model} ({model.info.name}, {model.info.model_type}, {model.info.num_anchors} anchors)"
              + (f"; torch rows from {args.checkpoint}" if args.checkpoint else ""),
              f"video: {args.video}; latency excludes decoding (shared by all; see the breakdown) and our drawing",
              "MediaPipe picks its own thread count; dlib runs single-threaded; ours uses ONNX Runtime with "
              + (threads if args.threads else f"{threads} ({model.threads} at the end)")]
    for note in notes:
        print(f"note: {note}")
    section = Section("Speed", command_line("benchmarks.speed", argv if argv is not None else sys.argv[1:]),
                      [models, races, stages], notes)
    print(f"appended to {append_section(section, args.results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
