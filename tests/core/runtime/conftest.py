"""Fixtures of the runtime tests: one tiny conforming model (tests/helpers_onnx.py), made and loaded once."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.runtime import LandmarkModel, load_model
from tests.helpers_onnx import make_model


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model(tmp_path_factory.mktemp("models") / "tiny.onnx")


@pytest.fixture(scope="module")
def model(model_path: Path) -> LandmarkModel:
    return load_model(model_path, device="cpu")
