"""Shared test fixtures: where the shared data lives, the bundled model and real frames (loaded once for
the whole run instead of once per module), an OSC receiver, the ``slow`` marker, and the Qt platform
for headless runs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.paths import SHARED_DATA

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")



@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data resolved from the repo root; tests that need it skip where it is absent."""
    if not (SHARED_DATA / "manifest.csv").exists():
        pytest.skip(f"shared data not found at {SHARED_DATA} (only present on the project's machines)")
    return SHARED_DATA


@pytest.fixture
def receiver():
    """A real OSC receiver on a free localhost port (:class:`tests.helpers_outputs.Receiver`)."""
    from tests.helpers_outputs import Receiver

    listening = Receiver()
    yield listening
    listening.close()


@pytest.fixture(scope="session")
def single_face_clip(shared_data: Path) -> Path:
    """The shared clip most tests run on: 72 frames of one face, 640x360, 30 fps."""
    return shared_data / "video" / "pyfeat_single_face.mp4"


@pytest.fixture(scope="session")
def clip_frames(single_face_clip: Path) -> list:
    """The first 30 frames of :func:`single_face_clip` (BGR arrays), decoded once; read-only, so a test
    that draws on one must copy it first (a shared frame changed in place would change every later test).
    OpenCV and ONNX Runtime are imported by the fixtures, not here: conftest.py is imported before any
    test, and the window's tests must find Qt as the app does, loaded before OpenCV."""
    import cv2

    capture = cv2.VideoCapture(str(single_face_clip))
    frames = [capture.read()[1] for _ in range(30)]
    capture.release()
    for frame in frames:
        frame.flags.writeable = False
    return frames


@pytest.fixture(scope="session")
def bundled_model():
    """The bundled model (assets/) on the CPU, a :class:`core.runtime.LandmarkModel` loaded once: ONNX
    Runtime sessions are safe to share, and each test builds its own pipeline around it."""
    from core.runtime import DEFAULT_MODEL_PATH, load_model

    return load_model(DEFAULT_MODEL_PATH, device="cpu")
