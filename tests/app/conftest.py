"""Fixtures of the window's tests: a settings store in a temporary ini file and a real MainWindow on it,
offscreen (tests/conftest.py), closed at teardown."""
from __future__ import annotations

from pathlib import Path

import pytest
from PyQt6.QtCore import QSettings

from app.window import MainWindow


@pytest.fixture
def store(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, store: QSettings, tmp_path: Path) -> MainWindow:
    win = MainWindow(store, {"recording_folder": str(tmp_path / "recordings")})
    qtbot.addWidget(win)  # closed at teardown: the worker stops and any recording is finalised
    win.resize(800, 520)
    win.show()
    return win
