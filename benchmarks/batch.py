"""Batch throughput: ``python main.py batch`` with 1 and 2 workers against a shell loop over the
headless command, on copies of one clip, plus what Ray itself costs.

    python -m benchmarks.batch [--video CLIP] [--copies 8] [--max-frames N]

1. Whole commands, as a user runs them, one after the other on the same copies: a bash ``for`` loop
   calling ``python main.py --source F --headless --landmarks OUT.csv`` per file, then
   ``python main.py batch DIR --out OUT --workers 1`` and ``--workers 2`` (each starting its own
   local Ray). Wall time from process start to exit; frames/s = all frames / that wall time. Each
   batch prints its Ray start-up (``ray.init``), reported separately.
2. Ray's own costs, in this process: ``ray.init`` of a local cluster, one batch actor's start-up (new
   worker process, imports, model load) until its first answer, and the round trip of a task that
   does no video work (a missing file, answered at once), which is the scheduling overhead per video.
"""
from __future__ import annotations

import logging
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.reporting import Section, append_section, benchmark_parser, command_line, markdown_table
from core.paths import REPO_ROOT

DEFAULT_VIDEO = REPO_ROOT / "assets" / "demo.mp4"
#: Round trips timed for the scheduling overhead (after the first, which includes actor start-up).
ROUND_TRIPS = 50


def build_parser():
    p = benchmark_parser("benchmarks.batch", __doc__)
    p.add_argument("--video", type=Path, default=DEFAULT_VIDEO, help="clip to copy (default: the demo clip)")
    p.add_argument("--copies", type=int, default=8, help="copies of the clip in the batch (default 8)")
    p.add_argument("--max-frames", type=int, help="frames per copy (default: all), for a quick run")
    return p


def timed(command: list[str] | str, **kwargs) -> tuple[float, str]:
    """Run a command to completion; its wall time and stdout. A failure is an error, not a number."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, **kwargs)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command} exited {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
    return wall, done.stdout


def whole_commands(folder: Path, out: Path, model: str, max_frames: int | None) -> list[dict]:
    """The shell loop and the two batch runs; one dict per run (name, wall, frames, startup)."""
    limit = ["--max-frames", str(max_frames)] if max_frames else []
    loop = (f'for f in "{folder}"/*.mp4; do "{sys.executable}" main.py --source "$f" --headless --model "{model}" '
            f'{" ".join(limit)} --landmarks "{out}/loop/$(basename "$f" .mp4).csv" || exit 1; done')
    (out / "loop").mkdir(parents=True)
    wall, printed = timed(["bash", "-c", loop])
    runs = [{"name": "shell loop over the headless command", "wall": wall,
             "frames": sum(int(n) for n in re.findall(r"^frames: (\d+)", printed, re.M)), "startup": None,
             "worker_fps": None}]
    for workers in (1, 2):
        command = [sys.executable, "main.py", "batch", str(folder), "--out", str(out / f"w{workers}"),
                   "--workers", str(workers), "--model", model, *limit]
        wall, printed = timed(command)
        frames = int(re.search(r"^frames: (\d+)", printed, re.M).group(1))
        startup = float(re.search(r"Ray start-up ([\d.]+) s", printed).group(1))
        busy = [float(fps) for fps in re.findall(r"^w\d+@\S+ +\d+ +\d+ +[\d.]+ +([\d.]+)$", printed, re.M)]
        runs.append({"name": f"batch, {workers} worker{'s' if workers > 1 else ''}", "wall": wall, "frames": frames,
                     "startup": startup, "worker_fps": statistics.mean(busy)})
    return runs


def ray_costs(model: str, scratch: Path) -> dict[str, float]:
    """Seconds for ``ray.init``, one actor's start-up, and the median no-work task round trip."""
    import ray

    from batch.inputs import VideoTask
    from batch.job import JobSettings
    from core.runtime.precision import file_sha256
    from batch.pool import WorkerPool, plan_pool
    from core.run_options import RunOptions

    started = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    init = time.perf_counter() - started
    try:
        pool = WorkerPool(plan_pool(ray.cluster_resources(), 1, "cpu"), Path(model), file_sha256(Path(model)), scratch)
        missing = VideoTask(scratch / "missing.mp4", Path("missing.mp4"), scratch / "missing")
        settings = JobSettings(RunOptions(""))
        actor = pool.actors[0][1]
        started = time.perf_counter()
        ray.get(actor.process.remote(missing, settings))
        first = time.perf_counter() - started
        trips = []
        for _ in range(ROUND_TRIPS):
            started = time.perf_counter()
            ray.get(actor.process.remote(missing, settings))
            trips.append(time.perf_counter() - started)
    finally:
        ray.shutdown()
    return {"init": init, "actor": first, "task": statistics.median(trips)}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.video.is_file():
        print(f"error: video not found: {args.video}", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="batch_bench_"))
    try:
        folder = scratch / "videos"
        folder.mkdir()
        for i in range(args.copies):
            shutil.copy(args.video, folder / f"copy{i}.mp4")
        runs = whole_commands(folder, scratch / "out", args.model, args.max_frames)
        costs = ray_costs(args.model, scratch)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    loop_fps = runs[0]["frames"] / runs[0]["wall"]
    rows = [[r["name"], str(args.copies), str(r["frames"]), f"{r['wall']:.1f}",
             "—" if r["startup"] is None else f"{r['startup']:.1f}",
             "—" if r["worker_fps"] is None else f"{r['worker_fps']:.1f}", f"{r['frames'] / r['wall']:.1f}",
             f"{r['frames'] / r['wall'] / loop_fps:.2f}x"] for r in runs]
    table = markdown_table(["run", "videos", "frames", "wall s", "Ray start-up s", "frames/s per busy worker",
                            "frames/s", "vs shell loop"], rows)
    costs_table = markdown_table(["Ray cost", "ms"], [
        ["ray.init (local cluster)", f"{1000 * costs['init']:.0f}"],
        ["one batch actor: start, imports, model load, first answer", f"{1000 * costs['actor']:.0f}"],
        [f"task round trip without video work (median of {ROUND_TRIPS})", f"{1000 * costs['task']:.1f}"]])
    ratio = runs[2]["frames"] / runs[2]["wall"] / loop_fps
    command = command_line("benchmarks.batch", argv if argv is not None else sys.argv[1:])
    section = Section("Batch", command, [table, costs_table], [
        f"target 2 workers >= 1.5x the shell loop's frames/s: {ratio:.2f}x — {'holds' if ratio >= 1.5 else 'misses'}",
        f"clip: {args.video.name}, {args.copies} copies" + (f", first {args.max_frames} frames each"
                                                           if args.max_frames else ""),
        "wall time = the whole command, process start to exit (Python start, imports, Ray start-up, model "
        "loads, processing, writing); both write a landmarks CSV + JSON sidecar per video (no annotated video)",
        "frames/s per busy worker: a worker's frames / the seconds it spent inside videos (the batch summary), "
        "mean over workers",
    ])
    print(section.markdown())
    print(f"appended to {append_section(section, args.results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
