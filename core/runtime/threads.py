"""How many CPU threads inference uses: chosen by measuring, while running, on the real frames.

No fixed count is right everywhere. On a loaded 2-core machine one intra-op thread is fastest (a
second thread waits for a core the decoder, encoder or another program holds); on an idle machine
with cores to spare more threads are faster (benchmarks/RESULTS.md, "inference threads"). So a CPU
model on a machine with more than two cores keeps one session per candidate count (1, and all cores
but one up to :data:`MAX_THREADS`): it starts on one thread (cheap and never bad), builds the other
session in the background once the run has started, and from then on routes a few frames to each
candidate every :attr:`ThreadTrial.every` runs and keeps the faster; on two cores it stays on one.
Sessions with different thread counts give bit-identical outputs (MLAS splits work, not sums), so
switching never changes a landmark. Spinning is off for every session: a spinning worker burns a
core the frame loop's decode and encode threads need, a cost its own latency does not show.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import onnxruntime as ort

log = logging.getLogger(__name__)

#: Largest intra-op thread count tried: the model is small, so more threads mostly add sync cost.
MAX_THREADS = 4


def physical_cores() -> int:
    """Physical core count (Linux: distinct (package, core) pairs in /proc/cpuinfo), else logical CPUs."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return os.cpu_count() or 1
    cores = set()
    package = core = None
    for line in text.splitlines() + [""]:
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            package = value.strip()
        elif key == "core id":
            core = value.strip()
        elif not key:
            if core is not None:
                cores.add((package, core))
            package = core = None
    return len(cores) or os.cpu_count() or 1


def thread_candidates(threads: int | None = None) -> tuple[int, ...]:
    """The intra-op thread counts to choose between: ``(threads,)`` when fixed, else 1 and all physical
    cores but one (at most :data:`MAX_THREADS`), which is just 1 on a machine with two cores or fewer.

    One core is left to the rest of the frame loop (decoding, encoding, the window): on the 2-core
    project machine the whole headless job with two inference threads took 10–17 % more CPU than with
    one, for a wall time between equal and 13 % shorter across runs, and adapting between 1 and 2 was
    3 % slower than staying on 1 (benchmarks/RESULTS.md, "Inference threads"; paired process runs).
    """
    if threads:
        return (threads,)
    most = min(physical_cores() - 1, MAX_THREADS)
    return (1,) if most <= 1 else (1, most)


def session_options(threads: int, spinning: bool = False) -> ort.SessionOptions:
    """The options every model session uses; only the intra-op thread count varies (``spinning`` is
    for benchmarks/threads.py, which measures what turning it off saves).

    Denormal floats are flushed to zero: a trained network's weights and activations hold some (values
    below 1.2e-38, e.g. from the weights' moving average), and the CPU handles each one in slow microcode.
    Measured on this machine at batch 1: v4 11.55 → 10.57 ms, v5 12.63 → 10.38 ms per crop; the outputs
    change by less than 1e-30.
    """
    options = ort.SessionOptions()
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    for pool in ("intra_op", "inter_op"):
        options.add_session_config_entry(f"session.{pool}.allow_spinning", "1" if spinning else "0")
    options.log_severity_level = 3  # errors only: placement warnings are expected with GPU providers
    return options


class ThreadTrial:
    """The decision rule alone (no sessions, no clock), so it can be tested with chosen timings.

    After ``start`` runs on the first candidate (late enough that a clip of a few seconds never pays
    for building a second session), every ``every`` runs a trial routes ``trial`` runs to each
    candidate in turn; the candidate with the lowest median time per crop wins until the next trial.
    """

    def __init__(self, candidates: int, start: int = 150, trial: int = 6, every: int = 600) -> None:
        self.candidates = candidates
        self.start, self.trial, self.every = start, trial, every
        self.best = 0
        self.runs = 0
        self._times: list[list[float]] = [[] for _ in range(candidates)]

    @property
    def wants_candidates(self) -> bool:
        """True once the run has gone far enough to pay for building the other sessions."""
        return self.runs >= self.start

    def next_candidate(self, ready: int) -> int:
        """Which candidate the next run uses, given how many candidate sessions exist so far."""
        phase = (self.runs - self.start) % self.every
        if ready < self.candidates or self.runs < self.start or phase >= self.trial * self.candidates:
            return self.best
        return phase % self.candidates

    def record(self, candidate: int, seconds_per_crop: float, ready: int) -> None:
        """Account for one finished run; closes the trial (and picks the winner) on its last run."""
        in_trial = ready == self.candidates and self.runs >= self.start
        phase = (self.runs - self.start) % self.every
        self.runs += 1
        if not in_trial or phase >= self.trial * self.candidates:
            return
        self._times[candidate].append(seconds_per_crop)
        if phase == self.trial * self.candidates - 1:
            medians = [float(np.median(t)) for t in self._times]
            self.best = int(np.argmin(medians))
            self._times = [[] for _ in range(self.candidates)]
            log.debug("thread trial medians (ms per crop): %s", [round(1000 * m, 2) for m in medians])


class AdaptiveSession:
    """Candidate sessions of one model behind one ``run``, routed by a :class:`ThreadTrial`."""

    def __init__(self, first: ort.InferenceSession, candidates: tuple[int, ...],
                 build: Callable[[int], ort.InferenceSession], trial: ThreadTrial | None = None) -> None:
        self.candidates = candidates
        self.sessions = [first]
        self.trial = trial or ThreadTrial(len(candidates))
        self._build = build
        self._builder: threading.Thread | None = None

    @property
    def threads(self) -> int:
        """The intra-op thread count the model currently runs with."""
        return self.candidates[self.trial.best]

    @property
    def current(self) -> ort.InferenceSession:
        return self.sessions[min(self.trial.best, len(self.sessions) - 1)]

    def run(self, output_names: list[str], feeds: dict[str, np.ndarray], count: int) -> list:
        """``session.run`` on the candidate the trial picks; ``count`` crops are in the batch."""
        ready = len(self.sessions)
        if ready < len(self.candidates) and self._builder is None and self.trial.wants_candidates:
            self._builder = threading.Thread(target=self._build_rest, name="inference-threads", daemon=True)
            self._builder.start()
        candidate = self.trial.next_candidate(ready)
        started = time.perf_counter()
        outputs = self.sessions[candidate].run(output_names, feeds)
        self.trial.record(candidate, (time.perf_counter() - started) / max(count, 1), ready)
        return outputs

    def wait_for_candidates(self, timeout: float | None = None) -> None:
        """Block until the background sessions exist (tests and benchmarks; the frame loop never waits)."""
        if self._builder is not None:
            self._builder.join(timeout)

    def _build_rest(self) -> None:
        """Build the remaining candidate sessions (ONNX Runtime releases the GIL while it does)."""
        for threads in self.candidates[len(self.sessions):]:
            try:
                self.sessions.append(self._build(threads))
            except Exception as exc:  # the first session already works: keep it (the trial never starts)
                log.warning("inference stays on %d thread(s): a %d-thread session failed (%s)",
                            self.candidates[0], threads, exc)
                return
