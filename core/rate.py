"""Frames per second over a sliding window, for the status bar (capture and processing rates).

A window of the last second or so reacts to a change within a second yet does not flicker the way the
reciprocal of a single frame interval does. Thread-safe: the capture thread ticks, the worker reads.
"""
from __future__ import annotations

import collections
import threading
import time


class RateMeter:
    """Events per second over the last ``window`` seconds (0 until two events were seen)."""

    def __init__(self, window: float = 1.0) -> None:
        self.window = window
        self._times: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._times.append(now)
            while len(self._times) > 2 and now - self._times[0] > self.window:
                self._times.popleft()

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._times) < 2 or now - self._times[-1] > self.window:
                return 0.0  # stalled: nothing arrived for a whole window
            span = self._times[-1] - self._times[0]
            return (len(self._times) - 1) / span if span > 0 else 0.0
