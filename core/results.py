"""The per-face result contract: what the pipeline produces for every face in a frame and what the
overlay, the recorder and the headless runner consume. One record type keeps them in step."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.face_state import FaceState
from core.geometry import Box
from core.pose import HeadPose


@dataclass(frozen=True, eq=False)
class FaceResult:
    """One tracked face in one frame.

    ``landmarks [L, 2]`` are image pixels (OpenCV's pixel-centre convention), already smoothed;
    ``confidence`` is the face score in (0, 1); ``box`` is the bounding box of these landmarks (what the
    overlay frames and labels); ``pose`` is ``None`` where the scheme has no 3D model or the fit failed;
    ``scheme`` names the landmark scheme (``core.schemes``); ``uncertainty [L]`` is each point's anchor
    spread in image pixels (``core.decode``; ``None`` for a single-anchor model); ``state`` is the
    eye/mouth openness and blinks (``core.face_state``; ``None`` where the scheme has no eye contours).
    """

    track_id: int
    landmarks: np.ndarray = field(repr=False)
    confidence: float
    box: Box
    pose: HeadPose | None
    scheme: str
    uncertainty: np.ndarray | None = field(default=None, repr=False)
    state: FaceState | None = None

    def __post_init__(self) -> None:
        if self.landmarks.ndim != 2 or self.landmarks.shape[1] != 2:
            raise ValueError(f"landmarks must be [L, 2], got {self.landmarks.shape}")
        if self.uncertainty is not None and self.uncertainty.shape != self.landmarks.shape[:1]:
            raise ValueError(f"uncertainty must be [{len(self.landmarks)}], got {self.uncertainty.shape}")

    @property
    def position(self) -> np.ndarray | None:
        """Head position ``(x, y, z)`` in mm in the camera frame (x right, y down, z forward): the pose
        fit's translation of the 3D mean face's centroid under ``core.pose.camera_matrix``'s assumed
        camera (focal length = image width, principal point at the centre); ``None`` without a pose."""
        return None if self.pose is None else np.asarray(self.pose.translation_vector, dtype=np.float64)
