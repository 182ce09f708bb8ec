"""Shared test fixtures: where the shared data lives, and the Qt platform for headless runs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.paths import REPO_ROOT, SHARED_DATA

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
