"""Face state from the landmarks: how open each eye and the mouth are, and blinks.

* **Eye aspect ratio** (EAR, Soukupová & Čech 2016): the mean distance between the upper and lower lid
  points over the distance between the eye corners, about 0.25–0.35 for an open eye and near 0.1 for a
  closed one whatever the face's size or distance. It is computed on every closed eye contour of the
  scheme, which lists an eye as corner, upper lid, corner, lower lid (iBUG 68: 6 points, WFLW: 8), so no
  index is hard-coded.
* **Mouth openness**: the same ratio on the inner-lip contour (same layout), 0 with the lips together.
* **Blinks** (:class:`BlinkDetector`, one per track): the mean EAR of both eyes against the face's own
  recent open level (people's eyes and the model's bias differ), with two thresholds (hysteresis), so
  noise around one threshold cannot produce a burst of blinks. The eyes count as closed below
  ``close_ratio`` × the open level and open again above ``open_ratio`` × it; a closure that ends within
  ``max_blink_s`` is a blink, a longer one is not.

Limit measured on the shared clips (tests/core/test_face_state.py): the default model's eyelid points
follow a full blink only part of the way (the mean EAR falls by 7–9 %, where a lid-tracking model's
falls by half), so with the default thresholds real blinks go unseen; thresholds low enough to see
them also fire on head turns and expressions. The EAR values are still reported for every frame.
"""
from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from core.schemes import LandmarkScheme, get_scheme

EYE_CONTOURS = ("left_eye", "right_eye")
MOUTH_CONTOUR = "inner_lips"


@dataclass(frozen=True)
class FaceState:
    """One face in one frame: eye aspect ratios (``left`` = the scheme's ``left_eye`` contour, the
    subject's right eye on the image's left), mouth openness, whether the eyes count as closed, whether
    a blink ended this frame, and the track's blink count so far."""

    eye_left: float
    eye_right: float
    mouth: float
    eyes_closed: bool = False
    blink: bool = False
    blinks: int = 0

    @property
    def eyes(self) -> float:
        """Mean eye aspect ratio of both eyes."""
        return (self.eye_left + self.eye_right) / 2.0


def aspect_ratio(points: np.ndarray, contour: tuple[int, ...]) -> float:
    """Opening of a loop listed corner, upper side, corner, lower side (an even number of points):
    the mean distance between facing upper and lower points over the corner-to-corner distance."""
    n = len(contour)
    if n < 4 or n % 2:
        raise ValueError(f"an eye or lip contour needs an even number (>= 4) of points, got {n}")
    pts = np.asarray(points, dtype=np.float64)[list(contour)]
    half = n // 2
    width = float(np.hypot(*(pts[0] - pts[half])))
    if width <= 0:
        return 0.0
    gaps = np.hypot(*(pts[1:half] - pts[:half:-1]).T)  # point k faces point n - k
    return float(gaps.mean() / width)


def measure(landmarks: np.ndarray, scheme: LandmarkScheme | str) -> FaceState:
    """Eye aspect ratios and mouth openness of one face ``[L, 2]`` (no blink logic)."""
    scheme = get_scheme(scheme) if isinstance(scheme, str) else scheme
    contours = {c.name: c.indices for c in scheme.contours}
    missing = [n for n in (*EYE_CONTOURS, MOUTH_CONTOUR) if n not in contours]
    if missing:
        raise ValueError(f"scheme {scheme.name} has no {', '.join(missing)} contour")
    left, right = (aspect_ratio(landmarks, contours[n]) for n in EYE_CONTOURS)
    return FaceState(left, right, aspect_ratio(landmarks, contours[MOUTH_CONTOUR]))


class BlinkDetector:
    """Blink events for one tracked face, with hysteresis (see the module docstring).

    The open level is the median mean-EAR over the previous ``window_s`` seconds: a blink (a few
    frames) barely moves it, a lasting change (a smile narrows the eyes) is followed within the window.
    The window is 0.6 s, not longer: a smile can narrow the eyes by half within a third of a second, and
    a blink that follows at once (the single-face clip: a smile over frames 17-25, the lids shut at 26-28)
    must find the level already lowered when the eyes reopen, within ``max_blink_s`` of closing; with a
    1 s window the level still stood at the unsmiling eyes then, so the reopening never counted. A blink
    shorter than 0.3 s is under half the window and cannot move its median. Because the level also
    comes down to meet eyes that stay shut, reopening needs the lids to move apart again too: the ratio
    must rise to ``reopen_rise`` times its lowest value since closing, so a long closure stays one
    closure (and no blink) however the level follows it.
    """

    def __init__(self, close_ratio: float = 0.8, open_ratio: float = 0.9, max_blink_s: float = 0.5,
                 window_s: float = 0.6, reopen_rise: float = 1.3) -> None:
        if not 0 < close_ratio < open_ratio <= 1:
            raise ValueError(f"need 0 < close_ratio < open_ratio <= 1, got {close_ratio}, {open_ratio}")
        if max_blink_s <= 0 or window_s <= 0:
            raise ValueError(f"max_blink_s and window_s must be positive, got {max_blink_s}, {window_s}")
        self.close_ratio, self.open_ratio = close_ratio, open_ratio
        self.max_blink_s, self.window_s, self.reopen_rise = max_blink_s, window_s, reopen_rise
        self._closed_min = np.inf
        self._history: deque[tuple[float, float]] = deque()
        self._closed_since: float | None = None
        self.blinks = 0

    @property
    def open_level(self) -> float | None:
        """The current open-eye EAR (None until a frame was seen)."""
        return statistics.median(e for _, e in self._history) if self._history else None

    def update(self, state: FaceState, t: float) -> FaceState:
        """Feed one frame's measured state at time ``t`` (s); returns it with the blink fields set."""
        t, ear, level = float(t), state.eyes, self.open_level
        blink = False
        if level is not None:
            if self._closed_since is None and ear < self.close_ratio * level:
                self._closed_since, self._closed_min = t, ear
            elif self._closed_since is not None:
                self._closed_min = min(self._closed_min, ear)
                if ear > self.open_ratio * level and ear > self.reopen_rise * self._closed_min:
                    blink = t - self._closed_since <= self.max_blink_s
                    self.blinks += blink
                    self._closed_since = None
        self._history.append((t, ear))
        while self._history and self._history[0][0] < t - self.window_s:
            self._history.popleft()
        return replace(state, eyes_closed=self._closed_since is not None, blink=blink, blinks=self.blinks)


class FaceStates:
    """Face state for every track of a pipeline: one :class:`BlinkDetector` per track id, forgotten
    when the track is gone (a new face must not inherit another's open level)."""

    def __init__(self, **blink_params: float) -> None:
        self._params = blink_params
        self._detectors: dict[int, BlinkDetector] = {}

    def update(self, track_id: int, landmarks: np.ndarray, scheme: LandmarkScheme | str, t: float) -> FaceState:
        detector = self._detectors.setdefault(track_id, BlinkDetector(**self._params))
        return detector.update(measure(landmarks, scheme), t)

    def keep(self, track_ids: set[int]) -> None:
        """Forget the detectors of tracks not in ``track_ids``."""
        self._detectors = {k: v for k, v in self._detectors.items() if k in track_ids}
