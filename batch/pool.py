"""Ray actors that each load the model once and process many videos, with sizing and bounded retries.

Sizing (:func:`plan_pool`): one worker per CPU the cluster offers unless ``--workers`` says otherwise,
never more workers than CPUs, and ONNX Runtime threads per worker = CPUs // workers, so threads ×
workers ≤ cores and no two sessions fight for a core. Each actor reserves its threads as ``num_cpus``,
so Ray spreads actors over nodes by their free cores. When the cluster has GPUs (and ``--device`` is
not ``cpu``), each actor also reserves a share of one (``num_gpus``) and runs the CUDA provider.

The model travels by path: workers read the same file (the batch already needs inputs and outputs on a
file system every node sees), and each worker checks the file's SHA-256 against the driver's, so a node
with a different file fails its videos instead of mixing models in one batch.

Scheduling (:class:`WorkerPool`): a video is given to an idle worker only, so the queue stays on the
driver and a dead worker holds at most one video. When a worker dies (node lost, out of memory,
``ray.kill``), a replacement is started and its video goes back to the queue, up to ``retries`` times.
"""
from __future__ import annotations

import logging
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import cv2
import ray
from ray.exceptions import RayActorError, RayTaskError

from batch.inputs import UsageError, VideoTask
from batch.job import Finished, JobSettings, one_line, run_video
from batch.manifest import JobResult
from core.runtime import DeviceError, ModelError, load_model
from core.runtime.precision import file_sha256

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolPlan:
    """How many workers, and what each reserves and runs on."""

    workers: int
    threads: int  # ONNX Runtime intra-op threads, also the CPUs each actor reserves
    gpu_share: float  # num_gpus per actor (0: CPU only)
    device: str  # "cpu" | "cuda" as passed to core.runtime.load_model
    precision: str = "auto"  # as passed to core.runtime.load_model


def plan_pool(resources: dict[str, float], workers: int | None, device: str, precision: str = "auto") -> PoolPlan:
    """Size the pool from the cluster's ``ray.cluster_resources()``; see the module docstring."""
    cpus = max(1, int(resources.get("CPU", 1)))
    gpus = float(resources.get("GPU", 0))
    if device == "cuda" and gpus == 0:
        raise UsageError("--device cuda, but the Ray cluster offers no GPU")
    if workers is not None and workers > cpus:
        log.warning("--workers %d capped to the cluster's %d CPUs", workers, cpus)
    count = min(workers or cpus, cpus)
    use_gpu = gpus > 0 and device != "cpu"
    return PoolPlan(count, max(1, cpus // count), min(1.0, gpus / count) if use_gpu else 0.0,
                    "cuda" if use_gpu else "cpu", precision)


def short_name(actor_name: str) -> str:
    """``w3`` for the actor ``anchorface-batch-<run>-w3``: how the summary names a worker."""
    return actor_name.rsplit("-", 1)[-1]


class VideoWorker:
    """A Ray actor body: one model session, reused for every video it is given.

    A model it cannot load (or a different file at the same path on this node) is not fatal to the
    actor: every video it is given fails with that reason, so the batch still ends with one row each.
    """

    def __init__(self, name: str, model_path: str, model_sha256: str, plan: PoolPlan, staging_root: str) -> None:
        cv2.setNumThreads(plan.threads)  # OpenCV's own pool (warps, resizes) shares the same cores
        self.name = f"{short_name(name)}@{ray.util.get_node_ip_address()}"
        self.staging_label = name
        self.staging_root = Path(staging_root)
        self.model = None
        self.problem = ""
        try:
            if file_sha256(Path(model_path)) != model_sha256:
                self.problem = f"model file {model_path} on this node differs from the driver's (SHA-256)"
            else:
                self.model = load_model(model_path, device=plan.device, threads=plan.threads, precision=plan.precision)
        except DeviceError as exc:  # the headless command's wording for each
            self.problem = f"device problem: {exc}"
        except (ModelError, OSError) as exc:
            self.problem = f"invalid model: {exc}"

    def process(self, task: VideoTask, settings: JobSettings) -> tuple[str, JobResult]:
        """Run one video; returns this worker's name with the result."""
        if self.model is None:
            return self.name, JobResult("failed", self.problem)
        return self.name, run_video(task, self.model, settings, self.staging_root, self.staging_label)


class WorkerPool:
    """``plan.workers`` :class:`VideoWorker` actors and the driver-side queue that feeds them.

    Actors are named ``anchorface-batch-<run>-w<n>``, and a worker stages its files under
    ``<staging_root>/<actor name>.<random>/``, so a leftover there names the worker that left it (and a
    test can find the actor busy with a video and kill it).
    """

    def __init__(self, plan: PoolPlan, model_path: Path, model_sha256: str, staging_root: Path,
                 retries: int = 2) -> None:
        self.plan = plan
        self.retries = retries
        self._actor = ray.remote(VideoWorker)
        self._args = (str(model_path), model_sha256, plan, str(staging_root))
        self._started = 0
        self.run_id = f"anchorface-batch-{uuid.uuid4().hex[:8]}"
        self.actors = [self._spawn() for _ in range(plan.workers)]

    def _spawn(self) -> tuple[str, Any]:
        self._started += 1
        name = f"{self.run_id}-w{self._started}"
        return name, self._actor.options(name=name, num_cpus=self.plan.threads,
                                         num_gpus=self.plan.gpu_share).remote(name, *self._args)

    def close(self) -> None:
        """End the actors now, so a shared cluster gets their CPUs and GPUs back as the batch ends."""
        for _, actor in self.actors:
            ray.kill(actor)

    def run(self, tasks: list[VideoTask], settings: JobSettings) -> Iterator[Finished]:
        """Yield one :class:`Finished` per task, in completion order."""
        queue = deque((task, 1) for task in tasks)
        idle = list(self.actors)
        running: dict[Any, tuple[tuple[str, Any], VideoTask, int]] = {}
        while queue or running:
            while queue and idle:
                worker = idle.pop(0)
                task, attempt = queue.popleft()
                running[worker[1].process.remote(task, settings)] = (worker, task, attempt)
            (ref,), _ = ray.wait(list(running), num_returns=1)
            worker, task, attempt = running.pop(ref)
            try:
                name, result = ray.get(ref)
            except RayActorError as exc:
                replacement = self._spawn()
                self.actors[self.actors.index(worker)] = replacement
                idle.append(replacement)
                reason = one_line(exc)
                log.warning("worker %s died on %s (attempt %d): %s", worker[0], task.source, attempt, reason)
                if attempt <= self.retries:
                    queue.append((task, attempt + 1))
                    continue
                name, result = short_name(worker[0]), JobResult("failed", f"worker died on this video "
                                                                          f"({attempt} attempts): {reason}")
            except RayTaskError as exc:  # a bug on one video must not stop the batch; the row records it
                idle.append(worker)
                cause = exc.cause if exc.cause is not None else exc
                name, result = short_name(worker[0]), JobResult("failed", f"unexpected error: "
                                                                          f"{type(cause).__name__}: {one_line(cause)}")
            else:
                idle.append(worker)
            yield Finished(task, result, name, attempt)
