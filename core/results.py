"""The per-face result contract: what the pipeline produces for every face in a frame and what the
overlay, the recorder and the headless runner consume. One record type keeps them in step."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.geometry import Box
from core.pose import HeadPose


@dataclass(frozen=True, eq=False)
class FaceResult:
    """One tracked face in one frame.

    ``landmarks [L, 2]`` are image pixels (OpenCV's pixel-centre convention), already smoothed;
    ``confidence`` is the face score in (0, 1); ``box`` is the bounding box of these landmarks (what the
    overlay frames and labels); ``pose`` is ``None`` where the scheme has no 3D model or the fit failed;
    ``scheme`` names the landmark scheme (``core.schemes``).
    """

    track_id: int
    landmarks: np.ndarray = field(repr=False)
    confidence: float
    box: Box
    pose: HeadPose | None
    scheme: str

    def __post_init__(self) -> None:
        if self.landmarks.ndim != 2 or self.landmarks.shape[1] != 2:
            raise ValueError(f"landmarks must be [L, 2], got {self.landmarks.shape}")
