"""The crop policy: how a face box or a set of landmarks becomes the model's square input crop.

Training and run time must crop the same way — a mismatch costs more accuracy than any model change —
so both call these functions. Coordinates follow OpenCV's pixel-centre convention (pixel ``i``
covers ``[i - 0.5, i + 0.5]``), which is what ``cv2.warpAffine`` uses, so a point mapped through a
2×3 matrix lands on the same image content as the warped pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: The project's one pixel convention: every reader returns it, every crop, warp, flip, resize and
#: inverse map keeps it, and every output (CSV, OSC, overlay, batch) is in it; the sidecar states it.
PIXEL_CONVENTION = ("0-based pixel centres: the centre of the top-left pixel is (0, 0) and pixel (i, j) "
                    "covers [i-0.5, i+0.5] x [j-0.5, j+0.5] (OpenCV's warpAffine/resize, numpy indexing)")

#: Side of the square crop divided by the longer side of the landmark bounding box. 1.5 leaves room
#: for a 45°-rolled face (a rotated square needs 1.41×) and for tracking drift between frames.
CROP_MARGIN = 1.5
#: Side of the model input in pixels (the paper's 224); a model may use another (its metadata says).
INPUT_SIZE = 224
#: Input sizes a model can be trained at: multiples of the backbone's stride 32 (one anchor per cell).
INPUT_SIZES = (128, 160, 192, 224)


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in image pixels, ``(x0, y0)`` top-left and ``(x1, y1)`` bottom-right."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0)

    @property
    def size(self) -> float:
        """The longer side: what the crop policy scales by."""
        return max(self.width, self.height)

    def iou(self, other: "Box") -> float:
        """Intersection over union, 0 for disjoint or degenerate boxes."""
        ix = max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = ix * iy
        union = self.width * self.height + other.width * other.height - inter
        return float(inter / union) if union > 0 else 0.0

    def as_array(self) -> np.ndarray:
        return np.array([self.x0, self.y0, self.x1, self.y1], dtype=np.float64)


def landmark_box(landmarks: np.ndarray) -> Box:
    """Tight bounding box of the visible points of an ``[L, 2]`` landmark array (hidden points are NaN)."""
    pts = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if not len(pts):
        raise ValueError("no visible landmark to take a box from")
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    return Box(float(x0), float(y0), float(x1), float(y1))


def rotation_matrix(angle_deg: float) -> np.ndarray:
    """2×2 matrix rotating points counter-clockwise as displayed (image y points down): the one rotation
    convention of the project (crops, templates, augmentation)."""
    a = np.deg2rad(angle_deg)
    return np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])


def square_crop_transform(center: tuple[float, float], side: float, out_size: int = INPUT_SIZE,
                          angle_deg: float = 0.0) -> np.ndarray:
    """2×3 affine image→crop mapping a ``side``-wide square around ``center`` onto ``out_size`` pixels.

    ``angle_deg`` rotates the content counter-clockwise as displayed (used by augmentation); 0 keeps
    the crop axis-aligned, which is what run time uses.
    """
    if side <= 0:
        raise ValueError(f"crop side must be positive, got {side}")
    linear = (out_size / float(side)) * rotation_matrix(angle_deg)
    c = np.asarray(center, dtype=np.float64)
    mid = (out_size - 1) / 2.0
    offset = np.array([mid, mid]) - linear @ c
    return np.hstack([linear, offset[:, None]])


def crop_from_box(box: Box, out_size: int = INPUT_SIZE, margin: float = CROP_MARGIN) -> np.ndarray:
    """The crop policy from a landmark-style box: square, centred, ``margin`` × the longer side."""
    return square_crop_transform(box.center, margin * box.size, out_size)


def crop_from_landmarks(landmarks: np.ndarray, out_size: int = INPUT_SIZE,
                        margin: float = CROP_MARGIN) -> np.ndarray:
    """The crop policy from landmarks (training from ground truth, tracking from the last frame)."""
    return crop_from_box(landmark_box(landmarks), out_size, margin)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2×3 affine (crop→image from image→crop)."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2×3 affine that applies ``inner`` first, then ``outer``."""
    o = np.vstack([outer, [0.0, 0.0, 1.0]])
    i = np.vstack([inner, [0.0, 0.0, 1.0]])
    return (o @ i)[:2]


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2×3 affine to points of shape ``[..., 2]``; works on batches of faces too."""
    pts = np.asarray(points, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def warp_to_crop(image: np.ndarray, matrix: np.ndarray, out_size: int = INPUT_SIZE) -> np.ndarray:
    """Cut the crop out of ``image``; pixels outside the image are black, as in the training data."""
    return cv2.warpAffine(image, np.asarray(matrix, dtype=np.float64), (out_size, out_size),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
