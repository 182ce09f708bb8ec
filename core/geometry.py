"""The crop policy: how a face box or a set of landmarks becomes the model's square input crop.

Training and run time must crop the same way — a mismatch costs more accuracy than any model change —
so both call these functions. Coordinates follow OpenCV's pixel-centre convention (pixel ``i``
covers ``[i - 0.5, i + 0.5]``), which is what ``cv2.warpAffine`` uses, so a point mapped through a
2×3 matrix lands on the same image content as the warped pixels.
"""
from __future__ import annotations

import math
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
    pts = np.asarray(landmarks).reshape(-1, 2)
    x0, y0 = pts.min(axis=0).tolist()
    x1, y1 = pts.max(axis=0).tolist()
    if not math.isfinite(x0 + y0 + x1 + y1):  # a hidden point (NaN) spoils min and max: leave it out
        pts = pts[np.isfinite(pts).all(axis=1)]
        if not len(pts):
            raise ValueError("no visible landmark to take a box from")
        x0, y0 = pts.min(axis=0).tolist()
        x1, y1 = pts.max(axis=0).tolist()
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
    """The crop policy from a landmark-style box: square, centred, ``margin`` × the longer side.

    The square is snapped to whole source pixels (its side and corner move by half a pixel at most, far
    inside the training's jitter), so the crop is a plain resize of a frame window: :func:`warp_to_crop`
    then cuts it about 3× faster than a general warp, on every tracked frame and every search crop."""
    side = max(1, round(margin * box.size))
    corner = np.round(np.asarray(box.center, dtype=np.float64) + 0.5 - side / 2.0)
    return square_crop_transform(tuple(corner - 0.5 + side / 2.0), side, out_size)


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
    """Cut the crop out of ``image``; pixels outside the image are black, as in the training data.

    Bilinear either way: a crop that shrinks a whole-pixel window (:func:`crop_from_box`) is a
    ``cv2.resize`` of that window, which samples the same points as ``cv2.warpAffine`` (pixel-centre
    mapping ``(x + 0.5)·r − 0.5``) at about a third of its cost for 3-channel images; anything else
    (rotated augmentation crops, upscaled small faces) is warped."""
    m = np.asarray(matrix, dtype=np.float64)
    window = _pixel_window(m, out_size)
    if window is None:
        return cv2.warpAffine(image, m, (out_size, out_size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return _resize_window(image, *window, out_size)


def _pixel_window(matrix: np.ndarray, out_size: int) -> tuple[int, int, int] | None:
    """``(x0, y0, side)`` of the source window when ``matrix`` maps a whole-pixel square of at least
    ``out_size`` pixels onto the crop without rotation (where resize equals the warp), else None.

    Upscaling is excluded: there resize would repeat the window's edge pixels where the warp blends
    in the pixels just outside it."""
    scale = matrix[0, 0]
    if scale <= 0 or matrix[0, 1] != 0 or matrix[1, 0] != 0 or matrix[1, 1] != scale:
        return None
    side, x0, y0 = out_size / scale, 0.5 - (matrix[0, 2] + 0.5) / scale, 0.5 - (matrix[1, 2] + 0.5) / scale
    whole = np.round([side, x0, y0])
    if side < out_size or np.abs(whole - [side, x0, y0]).max() > 1e-6:
        return None
    return int(whole[1]), int(whole[2]), int(whole[0])


def _resize_window(image: np.ndarray, x0: int, y0: int, side: int, out_size: int) -> np.ndarray:
    """The ``side``-pixel square at ``(x0, y0)`` resized to ``out_size``; parts outside the image black."""
    height, width = image.shape[:2]
    left, top, right, bottom = max(x0, 0), max(y0, 0), min(x0 + side, width), min(y0 + side, height)
    if left >= right or top >= bottom:
        return np.zeros((out_size, out_size) + image.shape[2:], dtype=image.dtype)
    window = image[top:bottom, left:right]
    if (left, top, right, bottom) != (x0, y0, x0 + side, y0 + side):
        window = cv2.copyMakeBorder(window, top - y0, y0 + side - bottom, left - x0, x0 + side - right,
                                    cv2.BORDER_CONSTANT, value=0)
    return cv2.resize(window, (out_size, out_size), interpolation=cv2.INTER_LINEAR)
