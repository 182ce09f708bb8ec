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

#: Bhattacharyya distance between neighbouring frames' hue–saturation histograms that counts as a cut.
CUT_THRESHOLD = 0.3
#: The frame is compared at this size: enough for a colour distribution, cheap (about 0.2 ms).
_SIGNATURE_SIZE = (160, 90)
_BINS = (16, 8)


def frame_signature(frame_bgr: np.ndarray) -> np.ndarray:
    """Normalised hue–saturation histogram of a small copy of the frame (brightness left out, so a
    light flicker or auto-exposure step is not a cut)."""
    small = cv2.resize(frame_bgr, _SIGNATURE_SIZE, interpolation=cv2.INTER_AREA)
    hist = cv2.calcHist([cv2.cvtColor(small, cv2.COLOR_BGR2HSV)], [0, 1], None, list(_BINS), [0, 180, 0, 256])
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
