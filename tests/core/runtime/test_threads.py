"""core.runtime.threads: how many intra-op threads, and the adaptive session that measures the candidates on
real runs without ever changing an output."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from core.paths import DEFAULT_MODEL_PATH
from core.runtime import load_model
from core.runtime.contract import INPUT_NAME
from core.runtime.model_input import to_model_input
from core.runtime.threads import (MAX_THREADS, AdaptiveSession, ThreadTrial, physical_cores, session_options,
                                  thread_candidates)
from tests.helpers_onnx import random_crops


def test_thread_candidates_are_one_and_all_cores_but_one_unless_fixed() -> None:
    assert 1 <= physical_cores() <= (os.cpu_count() or 1)
    most = min(physical_cores() - 1, MAX_THREADS)
    assert thread_candidates() == ((1,) if most <= 1 else (1, most))
    assert thread_candidates(3) == (3,)


def test_a_fixed_thread_count_is_one_session_without_spinning(model_path: Path) -> None:
    fixed = load_model(model_path, device="cpu", threads=1)
    options = fixed.session.get_session_options()
    assert options.intra_op_num_threads == 1 and fixed.threads == 1 and fixed.runner.candidates == (1,)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.set_denormal_as_zero") == "1"


def test_flushing_denormals_changes_no_output_that_matters() -> None:
    """Denormals (< 1.2e-38) are slow on CPUs and carry no landmark information: the bundled model's
    outputs with and without flushing them agree to far below a thousandth of a pixel."""
    crops = random_crops(4, size=160)
    flushed = load_model(DEFAULT_MODEL_PATH, device="cpu", threads=1, precision="fp32").run(crops)
    plain_options = session_options(1)
    plain_options.add_session_config_entry("session.set_denormal_as_zero", "0")
    plain = ort.InferenceSession(str(DEFAULT_MODEL_PATH), sess_options=plain_options, providers=["CPUExecutionProvider"])
    landmarks, _ = plain.run(None, {INPUT_NAME: to_model_input(crops)})
    np.testing.assert_allclose(flushed[0], landmarks, atol=1e-4)


def test_trial_keeps_the_candidate_measured_faster_and_measures_again() -> None:
    trial = ThreadTrial(2, start=4, trial=3, every=20)
    cost = {0: 2.0, 1: 1.0}  # seconds per crop of each candidate: the second is faster at first
    used = []
    for run in range(60):
        if run == 20:
            cost = {0: 1.0, 1: 3.0}  # load arrives: one thread is faster now (seen at the next trial)
        candidate = trial.next_candidate(ready=2)
        used.append(candidate)
        trial.record(candidate, cost[candidate], ready=2)
    assert used[:4] == [0] * 4, "the first runs stay on the first session"
    assert used[4:10] == [0, 1] * 3, "a trial alternates the candidates"
    assert set(used[10:24]) == {1}, "the faster one wins until the next trial"
    assert used[24:30] == [0, 1] * 3 and set(used[30:44]) == {0}, "the next trial follows the change"


def test_trial_waits_for_the_background_sessions() -> None:
    trial = ThreadTrial(2, start=2, trial=2, every=10)
    for _ in range(8):
        candidate = trial.next_candidate(ready=1)
        assert candidate == 0
        trial.record(candidate, 1.0, ready=1)


def test_adaptive_session_builds_the_other_sessions_and_never_changes_an_output(model_path: Path) -> None:
    """Two candidates whatever this machine's core count (load_model offers them with more than 2 cores)."""
    def build(threads: int) -> ort.InferenceSession:
        return ort.InferenceSession(str(model_path), sess_options=session_options(threads),
                                    providers=["CPUExecutionProvider"])

    adaptive = AdaptiveSession(build(1), (1, 2), build, ThreadTrial(2, start=5, trial=2, every=20))
    batch = to_model_input(random_crops(2, seed=3))
    first = adaptive.run(None, {INPUT_NAME: batch}, 2)
    for _ in range(5):
        adaptive.run(None, {INPUT_NAME: batch}, 2)
    adaptive.wait_for_candidates(timeout=60)
    assert [s.get_session_options().intra_op_num_threads for s in adaptive.sessions] == [1, 2]
    for _ in range(40):  # two trials and what follows each
        landmarks, confidence = adaptive.run(None, {INPUT_NAME: batch}, 2)
        np.testing.assert_array_equal(landmarks, first[0])
        np.testing.assert_array_equal(confidence, first[1])
    assert adaptive.threads in (1, 2) and adaptive.current is adaptive.sessions[adaptive.trial.best]
