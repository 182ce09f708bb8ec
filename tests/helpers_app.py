"""What the window's tests share: waiting for shown frames, reading a shown picture, and a camera that can
be unplugged (the one stand-in: there is no camera on CI machines)."""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np

from app.window import MainWindow
from core.paths import DEMO_CLIP

FRAME_TIMEOUT_MS = 30_000  # generous: the CI machine may be busy; no test asserts on speed


class FrameCounter:
    """Counts frames the window has shown, to wait for the next few."""

    def __init__(self, window: MainWindow) -> None:
        self.stats: list = []
        window.frameShown.connect(self.stats.append)

    def wait_for(self, qtbot, more: int) -> None:
        target = len(self.stats) + more
        qtbot.waitUntil(lambda: len(self.stats) >= target, timeout=FRAME_TIMEOUT_MS)


def play_demo(qtbot, window: MainWindow, frames: int = 3) -> FrameCounter:
    counter = FrameCounter(window)
    assert window.play_demo()
    counter.wait_for(qtbot, frames)
    return counter


def as_array(image) -> np.ndarray:
    """A BGR888 QImage as an [H, W, 3] uint8 array."""
    rows = np.frombuffer(image.constBits().asstring(image.sizeInBytes()), np.uint8).reshape(image.height(), -1)
    return rows[:, :image.width() * 3].reshape(image.height(), image.width(), 3)


class UnpluggableCamera:
    """Stands in for a camera behind ``cv2.VideoCapture(index)``: the demo clip at its own pace, until
    :meth:`unplug`, after which every read fails, like a webcam whose cable was pulled."""

    def __init__(self, real_capture: type) -> None:
        self._clip = real_capture(str(DEMO_CLIP))
        self._unplugged = threading.Event()

    def unplug(self) -> None:
        self._unplugged.set()

    def isOpened(self) -> bool:
        return True

    def set(self, prop: int, value: float) -> bool:
        return False

    def get(self, prop: int) -> float:
        return -1.0 if prop == cv2.CAP_PROP_FRAME_COUNT else self._clip.get(prop)

    def read(self):
        time.sleep(1 / 30)
        if self._unplugged.is_set():
            return False, None
        ok, image = self._clip.read()
        if not ok:  # keep delivering like a live camera
            self._clip.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self._clip.read()
        return ok, image

    def release(self) -> None:
        self._clip.release()
