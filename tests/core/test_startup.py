"""Start-up cost: what the run-time modules import before they need it (each check in a fresh interpreter)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.paths import REPO_ROOT

HEAVY = ("torch", "scipy", "matplotlib", "mediapipe", "filterpy", "training", "onnx", "av")


def imported_after(code: str) -> set[str]:
    """Top-level packages whose code ran after ``code`` in a new interpreter at the repo root (a module
    deferred by ``importlib.util.LazyLoader`` sits in ``sys.modules`` before it runs, so it is not counted)."""
    probe = (f"{code}\nimport json, sys, importlib.util\n"
             "ran = [m for m, mod in list(sys.modules.items()) if not isinstance(mod, importlib.util._LazyModule)]\n"
             "print(json.dumps(sorted({m.split('.')[0] for m in ran})))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", ["core.headless", "core.pipeline", "core.runtime", "core.detection", "core.draw"])
def test_run_time_modules_import_nothing_heavy(module: str) -> None:
    heavy = imported_after(f"import {module}") & set(HEAVY)
    assert not heavy, f"importing {module} imports {sorted(heavy)} before they are needed"


@pytest.mark.slow
def test_the_detector_imports_one_mediapipe_solution_and_later_imports_still_work() -> None:
    pytest.importorskip("mediapipe")
    code = ("from core.detection import MediaPipeDetector\n"
            "MediaPipeDetector()\n"
            "import sys\n"
            "assert 'matplotlib' not in sys.modules and 'mediapipe.tasks' not in sys.modules, 'all of mediapipe'\n"
            "import mediapipe as mp\n"
            "assert mp.solutions.face_mesh.FaceMesh and mp.solutions.drawing_utils.draw_landmarks\n"
            "assert mp.tasks.vision and mp.__version__\n")
    assert "matplotlib" in imported_after(code)  # completed on demand


@pytest.mark.slow
@pytest.mark.parametrize("clip", ["pyfeat_single_face.mp4", "pyfeat_WolfgangLanger_Pexels.mp4"])
def test_the_partly_imported_detector_finds_what_the_fully_imported_one_finds(shared_data: Path, clip: str) -> None:
    """Both detector ranges, on frames of a real clip: the same boxes and scores as with ``import mediapipe``."""
    pytest.importorskip("mediapipe")
    code = ("import sys, json, cv2\n"
            "if sys.argv[2] == 'full':\n"
            "    import mediapipe\n"
            "from core.detection import MediaPipeDetector\n"
            "detectors = [MediaPipeDetector(), MediaPipeDetector(full_range=True)]\n"
            "cap, found = cv2.VideoCapture(sys.argv[1]), []\n"
            "for k in range(40):\n"
            "    ok, frame = cap.read()\n"
            "    if ok and k % 8 == 0:\n"
            "        found.append([[(d.box.x0, d.box.y0, d.box.x1, d.box.y1, d.score) for d in det.detect(frame)]"
            " for det in detectors])\n"
            "print(json.dumps(found))\n")
    runs = {}
    for mode in ("full", "partial"):
        done = subprocess.run([sys.executable, "-c", code, str(shared_data / "video" / clip), mode], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-2000:]
        runs[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    assert runs["partial"] == runs["full"] and any(any(frame) for frame in runs["full"])


def test_the_kalman_smoother_is_filterpys_kalman_filter() -> None:
    """The smoother runs its own vectorised predict/update (each coordinate may have its own measurement
    noise, which filterpy's one shared covariance cannot hold); with one noise per face and the motion
    adaptation kept out (a noise gate no innovation reaches), it must equal filterpy's KalmanFilter."""
    from filterpy.common import Q_discrete_white_noise
    from filterpy.kalman import KalmanFilter

    from core.geometry import landmark_box
    from core.smoothing import KalmanConfig, KalmanSmoother, steady_state_covariance

    config = KalmanConfig(noise_gate=1e9)
    ours = KalmanSmoother(config)
    rng = np.random.default_rng(3)
    base = rng.uniform(100, 200, (68, 2))
    reference = None
    for k in range(40):
        pts = base + 0.5 * k + rng.normal(0, 1.5, base.shape)
        t, confidence = k / 30, rng.uniform(0.6, 1.0)
        size = landmark_box(pts).size
        r = (config.measurement_noise * size / confidence) ** 2
        got = ours.update(pts, confidence, t)
        if reference is None:
            reference = KalmanFilter(dim_x=2, dim_z=1)
            reference.x = np.vstack([pts.ravel(), np.zeros(pts.size)])
            reference.H = np.array([[1.0, 0.0]])
            reference.P = np.diag([r, 0.0])
            previous = t
            np.testing.assert_allclose(got, pts)
            continue
        dt, previous = t - previous, t
        if k == 1:  # the velocity starts settled, for the first time step (core.smoothing.KalmanSmoother._start)
            reference.P[1, 1] = steady_state_covariance(dt, config.process_noise * size, np.sqrt([r]))[1, 1, 0]
        reference.F = np.array([[1.0, dt], [0.0, 1.0]])
        reference.Q = Q_discrete_white_noise(dim=2, dt=dt, var=(config.process_noise * size) ** 2)
        reference.predict()
        reference.update(pts.ravel(), R=np.array([[r]]), H=reference.H)
        np.testing.assert_allclose(got, reference.x[0].reshape(pts.shape), rtol=0, atol=1e-9)


def test_white_noise_acceleration_is_filterpys() -> None:
    from filterpy.common import Q_discrete_white_noise

    from core.smoothing import white_noise_acceleration

    for dt, var in ((1 / 30, 2.5), (0.001, 1e-3), (0.5, 40.0)):
        np.testing.assert_array_equal(white_noise_acceleration(dt, var), Q_discrete_white_noise(dim=2, dt=dt, var=var))
