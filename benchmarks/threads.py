"""Inference threading: 1 vs more intra-op threads, spinning on and off, and the adaptive choice.

    python -m benchmarks.threads [--model FILE] [--rounds N] [--calls N] [--video CLIP] [--job-runs N]

The same real face crop (assets/probe_face.png) at batch 1, through sessions that differ only in
threads and spinning, and through the model as ``load_model`` builds it (it picks between 1 and more
threads by measuring while it runs). Two conditions: the machine as it is, then with one process per
core but one busy-looping beside us (what a laptop with a browser open, or the app's own decode and
encode threads, look like). Configurations alternate call block by call block, so a noisy neighbour
slows all alike. ``cpu ms / call`` is this process's CPU time per call: what spinning threads take
away from the frame loop's other threads, which their own latency does not show.

Then the whole headless job (decode, track, draw, encode video + CSV, on the frame loop's threads)
with 1 and with more inference threads, alternating, ``--job-runs`` times each: wall seconds and the
process's CPU seconds, because there the other threads compete for the same cores.
"""
from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import onnxruntime as ort
from tqdm import tqdm

from benchmarks.reporting import Section, append_section, benchmark_parser, command_line, markdown_table
from core.paths import REPO_ROOT, SHARED_VIDEOS
from core.headless import process_video
from core.runtime import ModelError, load_model
from core.runtime.verify import probe_crop
from core.runtime.contract import INPUT_NAME
from core.runtime.model_input import to_model_input
from core.runtime.threads import physical_cores, session_options
from core.run_options import OutputPaths, RunOptions

SHARED_VIDEO = SHARED_VIDEOS / "pyfeat_WolfgangLanger_Pexels.mp4"
DEFAULT_VIDEO = SHARED_VIDEO if SHARED_VIDEO.is_file() else REPO_ROOT / "assets" / "demo.mp4"


def fixed_session(model: str, threads: int, spinning: bool) -> ort.InferenceSession:
    """A CPU session with the runtime's options, except the thread count and spinning."""
    return ort.InferenceSession(model, sess_options=session_options(threads, spinning),
                                providers=["CPUExecutionProvider"])


@contextlib.contextmanager
def busy_cores(count: int) -> Iterator[None]:
    """``count`` busy-looping processes for the block (started and ended here, by their ids)."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(0.5)
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def measure(runs: dict[str, Callable[[], object]], rounds: int, calls: int, desc: str) -> dict[str, tuple[float, float]]:
    """Median wall ms and mean CPU ms per call of each configuration, blocks rotated per round."""
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, float] = dict.fromkeys(runs, 0.0)
    names = list(runs)
    for index in tqdm(range(rounds), desc=desc, unit="round", leave=False):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            run = runs[name]
            cpu_start = time.process_time()
            for _ in range(calls):
                start = time.perf_counter()
                run()
                wall[name].append(time.perf_counter() - start)
            cpu[name] += time.process_time() - cpu_start
    return {k: (1000 * float(np.median(wall[k])), 1000 * cpu[k] / (rounds * calls)) for k in runs}


def measure_job(model_path: str, video: Path, counts: tuple[int, ...], runs: int,
                max_frames: int | None) -> list[list[str]]:
    """Rows of the whole-job table: median wall and CPU seconds per inference thread count."""
    models = {n: load_model(model_path, device="cpu", threads=n) for n in counts}
    wall: dict[int, list[float]] = {n: [] for n in counts}
    cpu: dict[int, list[float]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory(prefix="threads_job_") as scratch:
        for run in tqdm(range(runs), desc="whole job", unit="round", leave=False):
            for n in counts[run % len(counts):] + counts[:run % len(counts)]:
                out = Path(scratch) / f"job_{n}_{run}"
                outputs = OutputPaths(out.with_suffix(".csv"), out.with_suffix(".json"), out.with_suffix(".mp4"))
                started, cpu_started = time.perf_counter(), _process_cpu()
                process_video(RunOptions(str(video), outputs, max_frames=max_frames), models[n], progress=False)
                wall[n].append(time.perf_counter() - started)
                cpu[n].append(_process_cpu() - cpu_started)
    return [[f"{n} thread{'s' if n > 1 else ''}", str(runs), f"{np.median(wall[n]):.2f}", f"{np.median(cpu[n]):.2f}"]
            for n in counts]


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser("benchmarks.threads", __doc__)
    parser.add_argument("--rounds", type=int, default=20, help="rounds; each makes --calls calls per configuration")
    parser.add_argument("--calls", type=int, default=10, help="calls per configuration per round")
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO, help="clip of the whole-job table")
    parser.add_argument("--job-runs", type=int, default=3, help="whole-job runs per thread count (0: skip)")
    parser.add_argument("--job-frames", type=int, help="whole job: stop after this many frames (default: all)")
    args = parser.parse_args(argv)
    try:
        adaptive = load_model(args.model, device="cpu")
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    face = probe_crop(adaptive.input_size)[None]
    crops = to_model_input(face)
    most = max(2, min(physical_cores(), 4))
    runs: dict[str, Callable[[], object]] = {"1 thread": lambda s=fixed_session(args.model, 1, False):
                                             s.run(None, {INPUT_NAME: crops})}
    for spinning in (True, False):
        session = fixed_session(args.model, most, spinning)
        runs[f"{most} threads, spinning {'on' if spinning else 'off'}"] = \
            lambda s=session: s.run(None, {INPUT_NAME: crops})
    runs["adaptive (load_model default)"] = lambda: adaptive.run(face)
    for run in runs.values():
        for _ in range(5):
            run()
    if len(adaptive.runner.candidates) > 1:  # let it build its other sessions and run a first trial
        for _ in range(adaptive.runner.trial.start):
            adaptive.run(face)
        adaptive.runner.wait_for_candidates(timeout=60)

    rows = []
    chosen = []
    for label, loaded in (("as it is", 0), (f"{os.cpu_count() - 1} core(s) busy-looping", os.cpu_count() - 1)):
        with busy_cores(loaded) if loaded else contextlib.nullcontext():
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            results = measure(runs, args.rounds, args.calls, label)
        chosen.append(f"{label}: adaptive ran on {adaptive.threads} thread(s) at the end")
        fastest = min(v[0] for v in results.values())
        rows += [[label if i == 0 else "", name, f"{load:.1f}" if i == 0 else "", f"{wall:.2f}",
                  f"{wall / fastest:.2f}", f"{cpu:.2f}"] for i, (name, (wall, cpu)) in enumerate(results.items())]
    table = markdown_table(["machine", "configuration", "load avg", "median ms / call", "vs fastest",
                            "cpu ms / call"], rows)
    print(table)
    tables = [table]
    if args.job_runs:
        job = markdown_table(["whole headless job, inference on", "runs", "median wall s", "median CPU s"],
                             measure_job(args.model, args.video, (1, most), args.job_runs, args.job_frames))
        print(job)
        tables.append(job)
    notes = [f"model: {args.model}, batch 1 (one real face crop), {args.rounds} rounds x {args.calls} calls per "
             "configuration", *chosen,
             f"whole job: {args.video.name}, video + CSV through core.headless.process_video, spinning off"]
    for note in notes:
        print(f"note: {note}")
    section = Section("Inference threads", command_line("benchmarks.threads", argv if argv is not None
                                                        else sys.argv[1:]), tables, notes)
    print(f"appended to {append_section(section, args.results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
