"""Fixtures of the window's tests: a settings store in a temporary ini file and a real MainWindow on it,
offscreen (tests/conftest.py), closed at teardown."""
from __future__ import annotations

from pathlib import Path

import pytest
from PyQt6.QtCore import QSettings

from app.window import MainWindow

#: The top-level widgets a test left, held until its teardown (see :func:`pytest_pyfunc_call`).
HELD_WINDOWS = pytest.StashKey[list]()


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


@pytest.hookimpl(hookwrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    """Hold every top-level window from the end of the test body until its teardown has closed them.

    pytest-qt keeps only weak references to the widgets it closes, and processes Qt events right after
    the test body: a window whose last reference was the test's local variable could then be garbage
    collected piecemeal — a pyqtgraph axis of the live plot first — while Qt still paints it, which
    crashes the whole run (seen as a segmentation fault, depending on when the collector happens to run).
    """
    yield
    from PyQt6.QtWidgets import QApplication

    if QApplication.instance() is not None:
        pyfuncitem.stash[HELD_WINDOWS] = QApplication.topLevelWidgets()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item):
    """Let the windows go once the teardown has closed them (they are deleted by Qt, not by the collector)."""
    yield
    if HELD_WINDOWS in item.stash:
        del item.stash[HELD_WINDOWS]
