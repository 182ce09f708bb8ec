"""Start the desktop app from ``main.py``'s arguments: the window, its source, and the screenshot helper.

``--screenshot OUT.png --frames N`` runs the real window until N frames have been processed and shown,
saves ``window.grab()`` and exits, so the README's picture is the app itself rather than a mock-up.
"""
from __future__ import annotations

import argparse
import ctypes
import logging
import os
import sys
from pathlib import Path
from typing import Mapping

from PyQt6.QtCore import QSettings, QTimer
from PyQt6.QtWidgets import QApplication

from app.settings import APPLICATION, ORGANIZATION
from app.window import MainWindow
from app.worker import FrameStats
from core.config import given_arguments
from core.run_options import given_sink_arguments

log = logging.getLogger(__name__)

WINDOW_SIZE = (1120, 720)
NO_DISPLAY = "error: no display found — use --headless, or xvfb-run -a python main.py"
#: Qt platform plugins that need a running X11 or Wayland display.
_DISPLAY_PLATFORMS = ("xcb", "wayland")


#: The shared libraries Qt's xcb platform plugin (``libqxcb.so`` and ``libQt6XcbQpa.so.6``, Qt 6.5+) links
#: against beyond Qt itself, by soname, each with the Debian/Ubuntu package that ships it. A desktop
#: install has most of them; ``libxcb-cursor0`` (new in Qt 6.5), ``libxcb-icccm4`` and ``libxcb-keysyms1``
#: are often absent, and then Qt aborts (exit 134) with a page pointing into OpenCV's plugin folder.
#: tests/app/test_app.py checks this table against what ``ldd`` lists for the installed plugin.
XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1", "libX11.so.6": "libx11-6", "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0", "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0", "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0", "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0", "libxcb-sync.so.1": "libxcb-sync1", "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0", "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0", "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
}


def _wanted_platforms(env: Mapping[str, str]) -> list[str]:
    """The Qt platform plugins ``QT_QPA_PLATFORM`` asks for, in order (empty: Qt's default)."""
    return [p.split(":")[0].strip() for p in env.get("QT_QPA_PLATFORM", "").split(";") if p.strip()]


def display_missing(env: Mapping[str, str] = os.environ, platform: str = sys.platform) -> bool:
    """Would Qt abort for want of a display? On Linux and the BSDs, Qt's default platform (and
    ``QT_QPA_PLATFORM=xcb``/``wayland``) needs ``DISPLAY`` or ``WAYLAND_DISPLAY``; without one it
    prints a page about the "xcb" plugin pointing into OpenCV's plugin folder and aborts (rc 134).
    Other platforms (``offscreen``, ``vnc``, ``eglfs``, Windows, macOS) need no such variable."""
    if platform.startswith(("win", "darwin")):
        return False
    wanted = _wanted_platforms(env)
    if wanted and not any(p in _DISPLAY_PLATFORMS for p in wanted):
        return False
    return not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def uses_xcb(env: Mapping[str, str] = os.environ, platform: str = sys.platform) -> bool:
    """Will Qt start its xcb (X11) plugin? On Linux when ``QT_QPA_PLATFORM`` names xcb first, or names
    nothing and there is an X display outside a Wayland session (where Qt picks its Wayland plugin)."""
    if not platform.startswith("linux"):
        return False
    wanted = _wanted_platforms(env)
    if wanted:
        return wanted[0] == "xcb"
    wayland_session = env.get("XDG_SESSION_TYPE") == "wayland" and bool(env.get("WAYLAND_DISPLAY"))
    return bool(env.get("DISPLAY")) and not wayland_session


def missing_libraries(libraries: Mapping[str, str] = XCB_LIBRARIES) -> dict[str, str]:
    """The sonames of ``libraries`` the dynamic loader cannot load, with their packages. Loading them
    is what Qt's plugin is about to do anyway; doing it first turns Qt's abort into a clear message."""
    missing = {}
    for soname, package in libraries.items():
        try:
            ctypes.CDLL(soname)
        except OSError:
            missing[soname] = package
    return missing


def missing_libraries_message(missing: Mapping[str, str]) -> str:
    """One line naming the missing libraries and the apt command that installs them."""
    packages = " ".join(sorted(set(missing.values())))
    return (f"error: Qt's X11 (xcb) plugin needs {', '.join(missing)}, not installed — install them with "
            f"`sudo apt install {packages}` (Debian/Ubuntu), or use --headless")


def run_app(args: argparse.Namespace) -> int:
    """Show the window (reusing a running QApplication) and return the exit code of its event loop;
    2 with one line, before Qt starts, when there is no display to show it on or the X11 plugin's
    libraries are missing."""
    if QApplication.instance() is None:
        if display_missing():
            print(NO_DISPLAY, file=sys.stderr)
            return 2
        missing = missing_libraries() if uses_xcb() else {}
        if missing:
            print(missing_libraries_message(missing), file=sys.stderr)
            return 2
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    window = MainWindow(QSettings(ORGANIZATION, APPLICATION), session_overrides(args), args.max_frames)
    window.resize(*WINDOW_SIZE)
    window.show()
    window.start_initial(args.source)
    if args.screenshot:
        if window.capture is None:
            print(f"error: nothing to take a screenshot of: {window.source_error or window.message.text}",
                  file=sys.stderr)
            window.close()
            return 2
        taker = ScreenshotTaker(window, Path(args.screenshot), args.frames)  # lives while the loop runs
        app.exec()
        return taker.exit_code
    return app.exec()


def session_overrides(args: argparse.Namespace) -> dict:
    """Command-line options that replace stored settings for this run (they persist only if the user
    then accepts the settings dialog)."""
    overrides: dict = {}
    if getattr(args, "model", None):
        overrides["model_path"] = str(Path(args.model).resolve())
    if getattr(args, "device", None):
        overrides["device"] = args.device
    if getattr(args, "precision", None):
        overrides["precision"] = args.precision
    overrides.update(given_arguments(args))  # processing settings (core.config), by key
    overrides.update(given_sink_arguments(args))  # output options (core.run_options), by field
    return overrides


class ScreenshotTaker:
    """Saves ``window.grab()`` to ``path`` once ``frames`` frames were shown (or the source ended), then quits."""

    def __init__(self, window: MainWindow, path: Path, frames: int) -> None:
        self.window, self.path, self.frames = window, path, max(1, frames)
        self.exit_code = 0
        self._done = False
        window.frameShown.connect(self._on_frame)
        window.sessionStopped.connect(self._on_stopped)

    def _on_frame(self, stats: FrameStats) -> None:
        if stats.processed >= self.frames:
            self._take()

    def _on_stopped(self, reason: str) -> None:
        if not self._done:
            log.warning("source ended before %d frames (%s); taking the screenshot now", self.frames, reason)
            self._take()

    def _take(self) -> None:
        if self._done:
            return
        self._done = True
        # Let the frame just shown be painted before grabbing the window.
        QTimer.singleShot(0, self._save)

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.window.grab().save(str(self.path), "PNG"):
            log.info("screenshot saved to %s", self.path)
        else:
            print(f"error: cannot write {self.path}", file=sys.stderr)
            self.exit_code = 1
        self.window.close()
        QApplication.instance().exit(self.exit_code)
