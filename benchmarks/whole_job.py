"""The whole job, as a user runs it: our headless command against the same job with MediaPipe Face Mesh
(``benchmarks.mesh_job``), whole processes (start-up, model loading, decoding, writing and exit
included), in pairs.

    python -m benchmarks.whole_job [--clips CLIP ...] [--runs N] [--modes video csv startup window]

Modes, per clip:

* ``video``: landmarks CSV and the annotated video (``--landmarks`` and ``--output``);
* ``csv``: landmarks CSV only (the batch case);
* ``startup``: ``--max-frames 1``, CSV only: the time to the first processed frame, written;
* ``window``: ours only, the real window (``QT_QPA_PLATFORM=offscreen``) until its first frame is
  shown and saved (``--screenshot --frames 1``): the window's start-up.

Ours and the yardstick run in turn (A B A B …, one unmeasured warm-up each first) and the speed ratio
is taken pair by pair (yardstick seconds / ours: above 1 means ours is faster), so a drift of the
machine's load falls on both sides of a pair. The table gives medians: wall seconds, CPU seconds
(user + system of the finished process, from the operating system) and the ratios.

``--ours-options '--detector short --max-faces 1'`` times our job with capabilities Face Mesh lacks
switched off (full range, the landmark search for profiles, more than one face): the bound that the
default schedule's cost is measured against, and what a user who needs none of them gets.
"""
from __future__ import annotations

import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from benchmarks.reporting import Section, append_section, benchmark_parser, command_line, markdown_table
from core.paths import REPO_ROOT, SHARED_VIDEOS as VIDEO_DIR
from main import build_parser, run_options

SHARED_CLIPS = (VIDEO_DIR / "pyfeat_WolfgangLanger_Pexels.mp4", VIDEO_DIR / "pyfeat_single_face.mp4")
DEFAULT_CLIPS = SHARED_CLIPS if all(c.is_file() for c in SHARED_CLIPS) else (REPO_ROOT / "assets" / "demo.mp4",)
MODES = ("video", "csv", "startup", "window")


@dataclass
class Timing:
    """Wall and CPU seconds of finished runs of one command."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def timed_run(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``command`` to completion; (wall s, CPU s of the child). A failed run is an error."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def commands(mode: str, clip: Path, scratch: Path, run: int, model: str,
             mesh_faces: int = 1, options: tuple[str, ...] = ()) -> tuple[list[str], list[str] | None]:
    """(ours, the yardstick or None) for one run, writing into ``scratch`` under fresh names; ``options``
    are main.py options of ours (e.g. ``--max-faces 6``)."""
    python = sys.executable
    ours = [python, "main.py", "--source", str(clip), "--model", model, *options]
    mesh = [python, "-m", "benchmarks.mesh_job", "--source", str(clip), "--max-faces", str(mesh_faces)]
    a, b = scratch / f"ours_{mode}_{run}", scratch / f"mesh_{mode}_{run}"
    if mode == "window":
        return ours + ["--screenshot", str(a.with_suffix(".png")), "--frames", "1"], None
    ours += ["--headless", "--landmarks", str(a.with_suffix(".csv"))]
    mesh += ["--landmarks", str(b.with_suffix(".csv"))]
    if mode == "video":
        ours += ["--output", str(a.with_suffix(".mp4"))]
        mesh += ["--output", str(b.with_suffix(".mp4"))]
    if mode == "startup":
        ours += ["--max-frames", "1"]
        mesh += ["--max-frames", "1"]
    return ours, mesh


def faces_followed(options: tuple[str, ...]) -> int:
    """The faces ours follows at most under main.py ``options``, as main.py's own parser reads them
    (the table's note says it); an option main.py refuses ends the benchmark before any run."""
    return run_options(build_parser().parse_args(["--headless", *options])).pipeline.tracker.max_faces


def measure(mode: str, clip: Path, runs: int, model: str, bar: tqdm, mesh_faces: int = 1,
            options: tuple[str, ...] = ()) -> tuple[Timing, Timing]:
    """``runs`` counted pairs (after one warm-up pair) of ours and the yardstick."""
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    ours, mesh = Timing(), Timing()
    with tempfile.TemporaryDirectory(prefix="whole_job_") as scratch:
        for run in range(runs + 1):
            a, b = commands(mode, clip, Path(scratch), run, model, mesh_faces, options)
            for command, timing in ((a, ours), (b, mesh)):
                if command is None:
                    continue
                wall, cpu = timed_run(command, env)
                if run > 0:
                    timing.wall.append(wall)
                    timing.cpu.append(cpu)
            bar.update(1)
    return ours, mesh


def row(clip: Path, mode: str, ours: Timing, mesh: Timing) -> list[str]:
    def median(values: list[float]) -> str:
        return f"{float(np.median(values)):.2f}" if values else "—"

    def ratio(b: list[float], a: list[float]) -> str:
        if not b:
            return "—"
        pairs = np.asarray(b) / np.asarray(a)
        return f"{np.median(pairs):.2f}x ({pairs.min():.2f}–{pairs.max():.2f})"

    return [clip.name, mode, str(len(ours.wall)), median(ours.wall), median(mesh.wall), ratio(mesh.wall, ours.wall),
            median(ours.cpu), median(mesh.cpu), ratio(mesh.cpu, ours.cpu)]


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser("benchmarks.whole_job", __doc__)
    parser.add_argument("--clips", nargs="+", type=Path, default=list(DEFAULT_CLIPS), help="videos to process")
    parser.add_argument("--runs", type=int, default=5, help="counted pairs per clip and mode")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES, help="which jobs to time")
    parser.add_argument("--mesh-faces", type=int, default=1,
                        help="Face Mesh's max_num_faces (default 1; give at least the clips' number of faces)")
    parser.add_argument("--max-faces", type=int, default=None,
                        help="ours: faces followed at most (main.py --max-faces; default: its own, 4)")
    parser.add_argument("--ours-options", default="", metavar="'OPTIONS'",
                        help="more main.py options for ours, one quoted string (e.g. '--detector short': what our "
                             "job costs with a capability switched off)")
    args = parser.parse_args(argv)
    options = tuple(([] if args.max_faces is None else ["--max-faces", str(args.max_faces)])
                    + shlex.split(args.ours_options))
    followed = faces_followed(options)
    missing = [str(c) for c in args.clips if not c.is_file()]
    if missing:
        print(f"error: clip not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    rows = []
    total = len(args.clips) * len(args.modes) * (args.runs + 1)
    try:
        with tqdm(total=total, desc="whole job", unit="pair") as bar:
            for clip in args.clips:
                for mode in args.modes:
                    rows.append(row(clip, mode, *measure(mode, clip, args.runs, args.model, bar, args.mesh_faces,
                                                         options)))
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = markdown_table(["clip", "job", "pairs", "ours wall s", "Face Mesh wall s", "speed (wall)",
                            "ours CPU s", "Face Mesh CPU s", "speed (CPU)"], rows)
    print(table)
    extra = "".join(f" {shlex.quote(option)}" for option in options)
    notes = [f"ours: `python main.py --source CLIP{extra} --headless --landmarks OUT.csv [--output OUT.mp4] "
             "[--max-frames 1]`; window: `python main.py --source CLIP --screenshot OUT.png --frames 1`",
             f"Face Mesh: `python -m benchmarks.mesh_job --source CLIP --max-faces {args.mesh_faces} --landmarks "
             f"OUT.csv [--output OUT.mp4] [--max-frames 1]` (same encoder settings as ours; ours follows up to "
             + (f"{followed} faces and always looks for new ones)" if followed > 1 else "1 face)"),
             "speed = Face Mesh seconds / ours, the median of per-pair ratios (min–max in brackets); "
             "wall and CPU seconds are medians of whole processes"]
    for note in notes:
        print(f"note: {note}")
    section = Section("Whole job vs MediaPipe Face Mesh",
                      command_line("benchmarks.whole_job", argv if argv is not None else sys.argv[1:]), [table], notes)
    print(f"appended to {append_section(section, args.results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
