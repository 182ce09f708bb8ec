"""Start-up cost: what the run-time modules import before they need it (each check in a fresh interpreter)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

HEAVY = ("torch", "scipy", "matplotlib", "mediapipe", "filterpy", "training", "onnx")


def imported_after(code: str) -> set[str]:
    """Top-level packages in ``sys.modules`` after running ``code`` in a new interpreter at the repo root."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", ["core.headless", "core.pipeline", "core.runtime", "core.detection", "core.draw"])
def test_run_time_modules_import_nothing_heavy(module: str) -> None:
    heavy = imported_after(f"import {module}") & set(HEAVY)
    assert not heavy, f"importing {module} imports {sorted(heavy)} before they are needed"


def test_the_detector_imports_one_mediapipe_solution_and_later_imports_still_work() -> None:
    pytest.importorskip("mediapipe")
    code = ("from core.detection import MediaPipeDetector\n"
            "MediaPipeDetector()\n"
            "import sys\n"
            "assert 'matplotlib' not in sys.modules and 'mediapipe.tasks' not in sys.modules, 'all of mediapipe'\n"
            "import mediapipe as mp\n"
            "assert mp.solutions.face_mesh.FaceMesh and mp.tasks.vision and mp.__version__\n")
    assert "mediapipe" in imported_after(code)
