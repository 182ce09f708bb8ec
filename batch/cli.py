"""``python main.py batch INPUT... --out DIR``: arguments, the run, the progress bar and the summary.

Exit codes: 0 when every video is done (processed now or skipped as already done; a video done with a
warning — frames missing from the source, model output not finite — is listed but done), 1 when some failed
(the summary lists them with their reasons), 2 for a usage error (no inputs, an output folder that
cannot be written, an invalid model, Ray not installed), each as one ``error:`` line.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import ipaddress
import os
import secrets
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from batch.inputs import (STAGING_NAME, UsageError, VideoTask, check_output_folder, check_outputs_are_not_inputs,
                          discover, plan_outputs)
from batch.job import Finished, JobSettings, one_line
from batch.manifest import InputKey, Manifest, ManifestRow, input_key, now
from batch.staging import remove_dead_runs, run_lock
from core.config import OneLineErrorParser, add_arguments, apply_arguments
from core.pipeline import PipelineConfig
from core.run_options import RunOptions, add_sink_arguments, positive_int, sink_options
from core.runtime import DEFAULT_MODEL_PATH, PRECISIONS, ModelError, load_model
from core.runtime.precision import PRECISION_HELP, file_sha256

INSTALL_HINT = 'batch processing needs Ray: pip install -e ".[batch]"'
#: Read by Ray when it is imported: "0" makes a new local node take the loopback address as its IP,
#: so the GCS, raylet, workers and driver bind their gRPC servers to 127.0.0.1 and the runtime-env
#: agent to that IP (Ray's default on macOS/Windows; on Linux they listen on every interface).
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
#: Ray's token authentication (in Ray 2.60): every call to the GCS, raylet and workers must carry the token.
AUTH_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineErrorParser(prog="python main.py batch", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video files, folders (searched recursively) or globs")
    p.add_argument("--out", required=True, type=Path, help="output folder; each input's relative path is kept under it")
    p.add_argument("--video", action="store_true", help="also write the annotated video (STEM.mp4)")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH, help="exported AnchorFace .onnx file "
                   "(default: the bundled model); every worker must be able to read this path")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto (default): CUDA when the cluster has GPUs, else CPU")
    p.add_argument("--precision", choices=PRECISIONS, default="auto", help=PRECISION_HELP)
    p.add_argument("--max-frames", type=positive_int, help="stop each video after this many frames (at least 1)")
    p.add_argument("--workers", type=int, help="actors (default: one per CPU the cluster offers)")
    p.add_argument("--address", help="join a running Ray cluster: 'auto' or 'ray://HOST:10001' "
                                     "(default: start a local one sized to this machine)")
    p.add_argument("--retries", type=int, default=2, help="times a video is retried when its worker dies (default 2)")
    p.add_argument("--force", action="store_true", help="redo videos the manifest says are done")
    add_sink_arguments(p.add_argument_group("output options", "the same as the headless command's; --stream "
                                                              "sends every worker's frames to HOST:PORT"))
    add_arguments(p.add_argument_group("processing settings", "the same as the headless command's"))
    return p


@dataclass
class Tally:
    """Running totals for the progress bar and the summary."""

    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    warned: list[tuple[str, str]] = field(default_factory=list)  # done, but the summary had a warning
    frames: int = 0
    per_worker: dict[str, list[float]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0.0]))

    def add(self, item: Finished) -> None:
        """Count one finished video: done or failed (with its reason), frames, and its worker's share."""
        result = item.result
        if result.status == "done":
            self.done += 1
            if result.warning:
                self.warned.append((str(item.task.relative), result.warning))
        else:
            self.failed.append((str(item.task.relative), result.reason))
        self.frames += result.frames
        stats = self.per_worker[item.worker]  # videos, frames, busy seconds
        stats[0] += 1
        stats[1] += result.frames
        stats[2] += result.seconds


def main(argv: list[str]) -> int:
    """Run a batch; returns the exit code (see the module docstring)."""
    started = time.perf_counter()
    args = build_parser().parse_args(argv)
    with _local_ray_environment(args.address is None and "ray" not in sys.modules):
        try:
            import ray  # noqa: F401 - only to say how to install it where it is missing
        except ImportError:
            print(f"error: {INSTALL_HINT}", file=sys.stderr)
            return 2
        try:
            return _batch(args, started)
        except UsageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2


@contextlib.contextmanager
def _local_ray_environment(local: bool) -> Iterator[None]:
    """For a local cluster (``local``), the environment Ray must see when it is imported: loopback only
    (:data:`LOOPBACK_ENV`) and token authentication with a random token made for this run; both are
    read at import (the driver) and inherited by every process Ray starts. Restored afterwards, so
    nothing this process starts later inherits the token."""
    keys = (*LOOPBACK_ENV, *AUTH_ENV)
    saved = {key: os.environ.get(key) for key in keys}
    if local:
        os.environ.update({**LOOPBACK_ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _batch(args: argparse.Namespace, started: float) -> int:
    import ray

    settings, model_sha, tasks = _prepare(args)
    remove_dead_runs(args.out.absolute() / STAGING_NAME)  # what killed batches left, even if all is done now
    manifest = Manifest(args.out)
    keys = {task.source: input_key(task.source, model_sha, settings.as_dict()) for task in tasks}
    todo = [t for t in tasks if args.force or not manifest.is_done(keys[t.source], t.outputs(settings.video))]
    tally = Tally(skipped=len(tasks) - len(todo))
    startup = 0.0
    if todo and ray.is_initialized():  # a caller's cluster (tests, notebooks) is joined, not shut down
        _run(args, settings, model_sha, todo, keys, manifest, tally)
    elif todo:
        with _ray_session(args.address) as startup:
            _run(args, settings, model_sha, todo, keys, manifest, tally)
    for line in summary_lines(tally, len(tasks), time.perf_counter() - started, startup):
        print(line)
    return 1 if tally.failed else 0


@contextlib.contextmanager
def _ray_session(address: str | None) -> Iterator[float]:
    """Ray started or joined for the block (yields the seconds that took) and shut down after it."""
    import ray

    startup = _start_ray(address)
    try:
        yield startup
    finally:
        ray.shutdown()


def _start_ray(address: str | None) -> float:
    """Start a local cluster (``address`` None) or join one; returns the seconds it took.

    A local cluster listens on 127.0.0.1 only and requires a random token made for this run
    (:func:`_local_ray_environment`), so neither the network nor another local user can submit jobs to
    it (unauthenticated Ray runs whatever it is sent). If Ray was imported before that environment
    could apply and the node took a routable address, the batch is refused rather than run exposed. Joining a cluster (``address``) is the user's explicit choice; its own security
    settings apply (README: what a cluster exposes).
    """
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network at run time: Ray would report usage
    began = time.perf_counter()
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(f"cannot start or join Ray at {address or 'a new local cluster'}: {one_line(exc)}") from exc
    node_ip = ray.util.get_node_ip_address()
    if address is None and not ipaddress.ip_address(node_ip).is_loopback:
        ray.shutdown()
        raise UsageError(f"the local Ray cluster would listen on {node_ip}, not only on 127.0.0.1 (Ray was "
                         f"imported before {', '.join(LOOPBACK_ENV)} could be set); refused")
    return time.perf_counter() - began


def _prepare(args: argparse.Namespace) -> tuple[JobSettings, str, list[VideoTask]]:
    """Everything checked before Ray starts: inputs, outputs (never an input), output folder, model (one
    ``UsageError`` each)."""
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.retries < 0:
        raise UsageError("--retries must be 0 or more")
    options = RunOptions("", sinks=sink_options(args), max_frames=args.max_frames, model=args.model,
                         device=args.device, pipeline=apply_arguments(PipelineConfig(), args), precision=args.precision)
    try:
        options.check()  # the stream host looked up on the driver, before any file or worker exists
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    tasks = plan_outputs(discover(args.inputs, args.out), args.out)
    check_outputs_are_not_inputs(tasks, args.video)  # before the output folder is even created
    check_output_folder(args.out)
    try:
        load_model(args.model, device="cpu", threads=1, precision=args.precision)  # the headless command's "invalid model" line
    except ModelError as exc:  # (the device is the workers' to try: this machine may have no GPU)
        raise UsageError(f"invalid model: {exc}") from exc
    settings = JobSettings(options, args.video)
    return settings, file_sha256(args.model), tasks


def _run(args: argparse.Namespace, settings: JobSettings, model_sha: str, todo: list[VideoTask],
         keys: dict[Path, InputKey], manifest: Manifest, tally: Tally) -> None:
    """Process ``todo`` on a worker pool, writing a manifest row as each video finishes."""
    import ray

    from batch.pool import WorkerPool, plan_pool

    plan = plan_pool(ray.cluster_resources(), args.workers, args.device, args.precision)
    staging = args.out.absolute() / STAGING_NAME
    pool = WorkerPool(plan, args.model.absolute(), model_sha, staging, args.retries)
    # Largest files first: a long video started last would leave every other worker idle at the end.
    largest_first = sorted(todo, key=lambda task: keys[task.source].size, reverse=True)
    began = time.perf_counter()
    # Locked before the first video is staged; on the way out this run's killed workers' leftovers go
    # (another batch writing into the same folder at the same time keeps its own).
    with run_lock(staging, pool.run_id):
        try:
            with tqdm(total=len(todo), desc=f"batch ({plan.workers} workers)", unit="video") as bar:
                for item in pool.run(largest_first, settings):
                    manifest.append(manifest_row(keys[item.task.source], item, settings.video))
                    tally.add(item)
                    bar.set_postfix_str(f"{tally.frames / (time.perf_counter() - began):.1f} frames/s")
                    bar.update(1)
        finally:
            pool.close()


def manifest_row(key: InputKey, item: Finished, video: bool) -> ManifestRow:
    """The manifest line for a finished video (its output paths only when it is done)."""
    outputs = [str(p) for p in item.task.outputs(video)] if item.result.status == "done" else []
    return ManifestRow(key, item.result, item.worker, item.attempts, outputs, now())


def summary_lines(tally: Tally, total: int, wall: float, startup: float) -> list[str]:
    """The table printed at the end: counts, throughput overall and per worker, and what failed."""
    warned = f", of them done with warnings {len(tally.warned)}" if tally.warned else ""
    lines = [f"videos: {total} (done {tally.done}, skipped as already done {tally.skipped}, "
             f"failed {len(tally.failed)}{warned})",
             f"frames: {tally.frames} in {wall:.1f} s wall time (Ray start-up {startup:.1f} s), "
             f"{tally.frames / wall if wall else 0:.1f} frames/s overall"]
    if tally.per_worker:
        lines.append(f"{'worker':<28} {'videos':>6} {'frames':>7} {'busy s':>7} {'frames/s':>8}")
        for worker, (videos, frames, busy) in sorted(tally.per_worker.items()):
            lines.append(f"{worker:<28} {int(videos):>6} {int(frames):>7} {busy:>7.1f} "
                         f"{frames / busy if busy else 0:>8.1f}")
    if tally.warned:
        lines.append(f"done with warnings ({len(tally.warned)}):")
        lines.extend(f"  {name}: {warning}" for name, warning in tally.warned)
    if tally.failed:
        lines.append(f"failed ({len(tally.failed)}):")
        lines.extend(f"  {name}: {reason}" for name, reason in tally.failed)
    return lines
