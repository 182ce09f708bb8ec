"""The live plot panel: head yaw, pitch, roll and the face confidence over the last seconds.

A number in the status bar says how things are now; a trace says how they have been moving — whether
the pose is jittering, drifting or following the head, and when confidence dropped. pyqtgraph is a
Qt-native plotting widget; redraws are capped at REDRAW_HZ so the UI thread keeps its time for the
video (measured here: about 4 ms of UI-thread CPU per 30 fps frame at 15 Hz, 6 ms redrawing every frame).
One face is plotted: the longest-tracked one (lowest track id), so the trace does not jump between people.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QVBoxLayout, QWidget

from core.results import FaceResult

#: Seconds of history shown.
HISTORY_SECONDS = 10.0
#: Redraws per second at most: smooth to the eye, and the UI thread keeps its time for the video.
REDRAW_HZ = 15
#: Line colours per series (readable on the dark plot background, distinguishable for most colour vision).
COLOURS = {"yaw": "#4cc9f0", "pitch": "#f72585", "roll": "#ffd166", "confidence": "#80ed99"}


@dataclass(frozen=True)
class PlotSample:
    """One frame's values; NaN where there was no face (or no pose), which leaves a gap in the line."""

    time: float
    yaw: float
    pitch: float
    roll: float
    confidence: float


def sample_of(timestamp: float, faces: tuple[FaceResult, ...] | list[FaceResult]) -> PlotSample:
    """The plotted values of one frame: its longest-tracked face, or gaps without one."""
    if not faces:
        return PlotSample(timestamp, np.nan, np.nan, np.nan, np.nan)
    face = min(faces, key=lambda f: f.track_id)
    pose = face.pose
    if pose is None:
        return PlotSample(timestamp, np.nan, np.nan, np.nan, face.confidence)
    return PlotSample(timestamp, pose.yaw, pose.pitch, pose.roll, face.confidence)


class PosePlot(QWidget):
    """Two stacked plots sharing a time axis (seconds before the newest frame): pose and confidence."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._samples: deque[PlotSample] = deque()
        self._dirty = False
        self._timer = QTimer(self, interval=1000 // REDRAW_HZ)
        self._timer.timeout.connect(self._redraw_if_changed)
        self.pose_plot = pg.PlotWidget()
        self.confidence_plot = pg.PlotWidget()
        self.pose_plot.addLegend(offset=(4, 4), labelTextSize="8pt")
        self.pose_plot.setLabel("left", "head pose", units="°")
        self.pose_plot.setYRange(-45, 45)
        self.confidence_plot.setLabel("left", "confidence")
        self.confidence_plot.setLabel("bottom", "seconds (0 = now)")
        self.confidence_plot.setYRange(0, 1)
        self.curves = {name: self.pose_plot.plot(name=name, pen=pg.mkPen(COLOURS[name], width=2), connect="finite")
                       for name in ("yaw", "pitch", "roll")}
        self.curves["confidence"] = self.confidence_plot.plot(pen=pg.mkPen(COLOURS["confidence"], width=2),
                                                              connect="finite")
        for plot in (self.pose_plot, self.confidence_plot):
            plot.setXRange(-HISTORY_SECONDS, 0, padding=0.03)  # room for the "0" (now) tick label
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setMenuEnabled(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.pose_plot, 3)
        layout.addWidget(self.confidence_plot, 2)
        self.setMinimumWidth(260)

    def add(self, sample: PlotSample) -> None:
        """Append a frame's values and forget what is older than the history (drawn at the next tick)."""
        if self._samples and sample.time < self._samples[-1].time:
            self._samples.clear()  # a new stream (its clock restarted): the old trace means nothing now
        self._samples.append(sample)
        while self._samples[0].time < sample.time - HISTORY_SECONDS:
            self._samples.popleft()
        self._dirty = True

    def clear(self) -> None:
        self._samples.clear()
        self._redraw()

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(seconds before the newest sample, values) of one series as plotted: ``yaw``, ``pitch``,
        ``roll`` or ``confidence``."""
        if not self._samples:
            return np.empty(0), np.empty(0)
        times = np.array([s.time for s in self._samples])
        return times - times[-1], np.array([getattr(s, name) for s in self._samples])

    def showEvent(self, event) -> None:  # noqa: N802 (Qt's name) — catch up on what arrived while hidden
        super().showEvent(event)
        self._redraw()
        self._timer.start()

    def hideEvent(self, event) -> None:  # noqa: N802 — nothing to draw while hidden
        super().hideEvent(event)
        self._timer.stop()

    def _redraw_if_changed(self) -> None:
        if self._dirty:
            self._redraw()

    def _redraw(self) -> None:
        self._dirty = False
        for name, curve in self.curves.items():
            curve.setData(*self.series(name))
