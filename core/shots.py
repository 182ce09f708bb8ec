"""Shot-cut detection: has the picture changed more than any camera or subject motion changes it?

After a cut the tracker would crop where the last shot's face was and, if the new shot has a face
there, follow it as the same person with the same id. A cut changes the whole picture at once, so the
colour distribution of consecutive frames is compared: a hue–saturation histogram of a small copy of
the frame, Bhattacharyya distance between neighbours. On the shared clips (a moving speaker, a moving
head) the distance between neighbouring frames never exceeded 0.066; across a cut between the two
clips it was 0.64–0.67 (``tests/core/test_shots.py``, ``tools/make_clips.py``). The default threshold,
0.3, sits between with a wide margin on both sides. A cut between two shots of one set with the same
colours is not seen here; the tracker's box-jump rule (``TrackerConfig.max_jump``) catches the case
where the face then lands somewhere no real motion takes it.
"""
from __future__ import annotations

import cv2
import numpy as np

from core.geometry import Box

#: Bhattacharyya distance between neighbouring frames' hue–saturation histograms that counts as a cut.
CUT_THRESHOLD = 0.3
#: The frame is compared at this size: enough for a colour distribution. Sampled (nearest pixel), not
#: averaged: an area resize of a 640x360 frame took 0.53 ms here, sampling 0.03 ms, and a histogram of
#: 14 400 sampled pixels is as good a colour distribution as one of their averages.
_SIGNATURE_SIZE = (160, 90)
_BINS = (16, 8)


def sampled(frame_bgr: np.ndarray) -> np.ndarray:
    """The frame sampled (nearest pixel) at ``_SIGNATURE_SIZE``: what the cut check and the newcomer
    watch look at, for a hundredth of an area resize's cost."""
    return cv2.resize(frame_bgr, _SIGNATURE_SIZE, interpolation=cv2.INTER_NEAREST)


def frame_signature(frame_bgr: np.ndarray) -> np.ndarray:
    """Normalised hue–saturation histogram of a small copy of the frame (brightness left out, so a
    light flicker or auto-exposure step is not a cut)."""
    hist = cv2.calcHist([cv2.cvtColor(sampled(frame_bgr), cv2.COLOR_BGR2HSV)], [0, 1], None, list(_BINS),
                        [0, 180, 0, 256])
    return cv2.normalize(hist, hist).flatten()


class ShotCutDetector:
    """Remembers the previous frame's signature; :meth:`is_cut` says whether ``frame`` starts a new shot.

    A threshold of 0 or less switches detection off (every frame continues the shot).
    """

    def __init__(self, threshold: float = CUT_THRESHOLD) -> None:
        self.threshold = threshold
        self._previous: np.ndarray | None = None

    def distance(self, frame_bgr: np.ndarray) -> float:
        """Distance of ``frame`` to the previous one (0 for the first frame); remembers ``frame``."""
        signature = frame_signature(frame_bgr)
        previous, self._previous = self._previous, signature
        if previous is None:
            return 0.0
        return float(cv2.compareHist(previous, signature, cv2.HISTCMP_BHATTACHARYYA))

    def is_cut(self, frame_bgr: np.ndarray) -> bool:
        if self.threshold <= 0:
            return False
        return self.distance(frame_bgr) > self.threshold

    def reset(self) -> None:
        """Forget the previous frame (a new source starts without a cut)."""
        self._previous = None


#: Grey levels by which a cell of :func:`watch_image` must differ to count as changed.
CHANGE_LEVEL = 25.0
#: Size of :func:`watch_image`: a cell is 8×8 pixels of a 640×360 frame.
WATCH_SIZE = (80, 45)


def watch_image(frame_bgr: np.ndarray) -> np.ndarray:
    """The grey ``WATCH_SIZE`` copy of the frame that change checks compare (int16, so differences do
    not wrap): the :func:`sampled` frame averaged 4 samples a cell."""
    return cv2.cvtColor(cv2.resize(sampled(frame_bgr), WATCH_SIZE, interpolation=cv2.INTER_AREA),
                        cv2.COLOR_BGR2GRAY).astype(np.int16)


def watch_cells(box: Box, reach: float, frame_shape: tuple[int, ...]) -> tuple[slice, slice]:
    """The cells of :func:`watch_image` that ``box``, grown ``reach`` times about its centre, covers."""
    sx, sy = WATCH_SIZE[0] / frame_shape[1], WATCH_SIZE[1] / frame_shape[0]
    cx, cy = box.center
    half_w, half_h = reach * box.width / 2, reach * box.height / 2
    return (slice(max(0, int((cy - half_h) * sy)), max(0, int(np.ceil((cy + half_h) * sy)))),
            slice(max(0, int((cx - half_w) * sx)), max(0, int(np.ceil((cx + half_w) * sx)))))


class NewcomerWatch:
    """Has the picture changed outside the tracked faces since the last detection? Then someone may
    have come in, and the sweep for new faces should not wait for its turn.

    Between sweeps (``TrackerConfig.detection_interval`` frames) a new face went unseen for up to that
    many frames; MediaPipe Face Mesh looks for faces on every frame while it follows fewer than its
    maximum. Looking costs far less than detecting: a grey ``WATCH_SIZE`` copy of the frame against the
    copy at the last detection; a cell counts as changed when it differs by more than ``level`` grey
    levels. The tracked faces' own surroundings (each face box grown ``reach`` times about its centre:
    the head turning, the shoulders, the hands near the face) are left out, since their motion is no
    newcomer. Changed cells over ``fraction`` of the rest: something new is there. The default 3 % (25
    grey levels) is a trade: at 1 % the shared webcam clips (light and motion away from the face) made
    the detector run on 19–23 % of frames instead of the periodic 10–11 %, at 10 % on 11–15 %; a face
    coming into the made staggered clip was seen at every setting from 1 % to 10 % (measurements in
    ``benchmarks/RESULTS.md``, issue 23 item 4).

    The grey copy averages the :func:`sampled` frame (4 samples a cell) instead of area-resizing the
    whole frame (0.21 ms a 640×360 frame here, called on most tracked frames): on the shared webcam
    clips, the made staggered three-face clip, the made faceless clip and the glasses clip the detector
    then ran on the same share of frames (±1.2 points) with the same faces per frame.
    """

    def __init__(self, level: float = CHANGE_LEVEL, fraction: float = 0.03, reach: float = 3.0) -> None:
        self.level, self.fraction, self.reach = level, fraction, reach
        self._reference: np.ndarray | None = None

    def seen(self, frame_bgr: np.ndarray) -> None:
        """A detection ran on ``frame``: it is what later frames are compared with."""
        self._reference = watch_image(frame_bgr)

    def changed(self, frame_bgr: np.ndarray, faces: list[Box]) -> bool:
        """Did the picture change, away from ``faces``, since :meth:`seen`? (True before any.)"""
        if self._reference is None:
            return True
        small = watch_image(frame_bgr)
        outside = np.ones(small.shape, dtype=bool)
        for box in faces:
            outside[watch_cells(box, self.reach, frame_bgr.shape)] = False
        if not outside.any():
            return False
        moved = np.abs(small - self._reference) > self.level
        return bool(moved[outside].mean() > self.fraction)
