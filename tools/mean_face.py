"""Derive the 3D ibug68 mean face that head pose fits (``assets/mean_face_3d_ibug68.npy``).

    python -m tools.mean_face --data ../shared/data

Rigid structure from motion over the train split's complete adult 2D shapes (Tomasi–Kanade factorisation under a
scaled orthographic camera, then a metric upgrade); :mod:`core.pose` documents the model frame and
only reads the result. An offline tool that regenerates a shipped asset, so it lives outside core.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from core.offline.datasets import FaceRecord, read_dataset, select_split
from core.paths import MEAN_FACE_3D
from core.pose import INTER_OCULAR_MM, POSE_SCHEME
from core.schemes import Contour, LandmarkScheme, get_scheme

log = logging.getLogger(__name__)

#: Sources left out of the head model: infants' faces have other proportions than the adults it tracks.
OTHER_DOMAINS = ("infanface",)


def pose_training_shapes(records: list[FaceRecord]) -> np.ndarray:
    """The train-split shapes the factorisation uses: the pose scheme, adults, every point visible.

    Factorisation needs each point in every view, so a turned face with hidden (NaN) points is left
    out rather than filled in.
    """
    shapes = [r.landmarks for r in select_split(records, "train")
              if r.scheme == POSE_SCHEME and r.source not in OTHER_DOMAINS and np.isfinite(r.landmarks).all()]
    return np.stack(shapes)


def derive_mean_face(shapes: np.ndarray, inter_ocular_mm: float = INTER_OCULAR_MM) -> np.ndarray:
    """Recover a 3D mean face ``[68, 3]`` (mm, model frame) from many 2D ibug68 shapes ``[N, 68, 2]``.

    Steps: centre and scale-normalise every shape; factorise the ``2N × 68`` measurement matrix to rank 3
    (Tomasi–Kanade); find the metric upgrade ``A`` that makes every view's two camera rows orthogonal
    and of equal length (scaled orthography); rotate into the model frame, resolve the depth sign
    (the nose points towards the camera), make the face exactly left–right symmetric by averaging it
    with its mirror image, and scale to ``inter_ocular_mm`` between the outer eye corners.
    """
    scheme = get_scheme(POSE_SCHEME)
    shapes = np.asarray(shapes, dtype=np.float64)
    if shapes.ndim != 3 or shapes.shape[1:] != (scheme.num_points, 2):
        raise ValueError(f"expected shapes [N, {scheme.num_points}, 2], got {shapes.shape}")
    if len(shapes) < 3:
        raise ValueError(f"structure from motion needs at least 3 views, got {len(shapes)}")
    centred = shapes - shapes.mean(axis=1, keepdims=True)
    # Equal weight per face whatever its size in pixels; the per-view scale is absorbed by the camera.
    centred /= np.sqrt((centred ** 2).sum(axis=(1, 2)) / scheme.num_points)[:, None, None]
    measurements = centred.transpose(0, 2, 1).reshape(-1, scheme.num_points)  # rows x0, y0, x1, y1, ...
    u, s, vt = np.linalg.svd(measurements, full_matrices=False)
    cameras = u[:, :3] * np.sqrt(s[:3])
    structure = np.sqrt(s[:3])[:, None] * vt[:3]
    upgrade = _metric_upgrade(cameras[0::2], cameras[1::2])
    points = (np.linalg.inv(upgrade) @ structure).T
    return _to_model_frame(points, scheme, inter_ocular_mm)


def _metric_upgrade(rows_x: np.ndarray, rows_y: np.ndarray) -> np.ndarray:
    """The 3×3 ``A`` with ``Q = A Aᵀ`` making ``aᵀQa = bᵀQb`` and ``aᵀQb = 0`` for every view's rows ``a, b``.

    The constraints are homogeneous in the 6 entries of the symmetric ``Q``; the least-squares solution
    is the right singular vector of the smallest singular value (its overall scale is irrelevant here,
    the model is rescaled to millimetres afterwards).
    """
    def coefficients(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # aᵀ Q b as a row over Q's entries
        return np.stack([a[:, 0] * b[:, 0], a[:, 0] * b[:, 1] + a[:, 1] * b[:, 0],
                         a[:, 0] * b[:, 2] + a[:, 2] * b[:, 0], a[:, 1] * b[:, 1],
                         a[:, 1] * b[:, 2] + a[:, 2] * b[:, 1], a[:, 2] * b[:, 2]], axis=1)

    system = np.vstack([coefficients(rows_x, rows_x) - coefficients(rows_y, rows_y),
                        coefficients(rows_x, rows_y)])
    q = np.linalg.svd(system)[2][-1]
    gram = np.array([[q[0], q[1], q[2]], [q[1], q[3], q[4]], [q[2], q[4], q[5]]])
    eigval, eigvec = np.linalg.eigh(gram)
    if eigval.sum() < 0:  # the singular vector's sign is arbitrary; Q must be positive (semi)definite
        eigval = -eigval
    if (eigval <= 0).any():
        raise ValueError("metric upgrade failed: the shapes do not constrain depth (too few distinct poses?)")
    return eigvec * np.sqrt(eigval)


def _to_model_frame(points: np.ndarray, scheme: LandmarkScheme, inter_ocular_mm: float) -> np.ndarray:
    """Rotate the factorised points into the model frame, fix the depth sign, symmetrise and scale."""
    left, right = scheme.outer_eye_corners
    x_axis = _unit(points[right] - points[left])
    mouth = _mouth_corners(points, scheme, x_axis)
    y_axis = points[list(mouth)].mean(axis=0) - (points[left] + points[right]) / 2.0
    y_axis = _unit(y_axis - x_axis * (x_axis @ y_axis))
    frame = np.stack([x_axis, y_axis, np.cross(x_axis, y_axis)], axis=1)
    model = (points - points.mean(axis=0)) @ frame
    # Factorisation cannot tell a face from its depth-mirrored twin (the Necker reversal); the nose
    # sticks out towards the camera, i.e. its points are nearer (smaller z) than the face on average.
    if model[_nose_points(scheme), 2].mean() > model[:, 2].mean():
        model[:, 2] *= -1.0
    mirrored = model[list(scheme.mirror)] * np.array([-1.0, 1.0, 1.0])
    model = (model + mirrored) / 2.0
    return model * (inter_ocular_mm / np.linalg.norm(model[right] - model[left]))


def _mouth_corners(points: np.ndarray, scheme: LandmarkScheme, x_axis: np.ndarray) -> tuple[int, int]:
    """The outer-lip points furthest left and right along the eye line (no hard-coded indices)."""
    lips = np.array(_contour(scheme, "outer_lips").indices)
    along = points[lips] @ x_axis
    return int(lips[along.argmin()]), int(lips[along.argmax()])


def _nose_points(scheme: LandmarkScheme) -> list[int]:
    return sorted({i for c in scheme.contours if c.name.startswith("nose") for i in c.indices})


def _contour(scheme: LandmarkScheme, name: str) -> Contour:
    try:
        return next(c for c in scheme.contours if c.name == name)
    except StopIteration:
        raise KeyError(f"scheme {scheme.name} has no contour {name!r}") from None


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def main(argv: list[str] | None = None) -> None:
    """Regenerate the 3D mean face from a dataset's train split."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.mean_face",
        description="Derive the 3D ibug68 mean face used for head pose from 2D training shapes "
                    "(Tomasi-Kanade structure from motion) and save it as a .npy file.")
    parser.add_argument("--data", type=Path, required=True,
                        help="dataset folder (e.g. ../shared/data); only its ibug68 train-split faces are used")
    parser.add_argument("--out", type=Path, default=MEAN_FACE_3D, help=f"output .npy file (default: {MEAN_FACE_3D})")
    parser.add_argument("--inter-ocular-mm", type=float, default=INTER_OCULAR_MM,
                        help="distance between the outer eye corners in mm, which sets the model's scale "
                             f"(default: {INTER_OCULAR_MM})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    shapes = pose_training_shapes(read_dataset(args.data))
    model = derive_mean_face(shapes, args.inter_ocular_mm)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, model.astype(np.float64), allow_pickle=False)
    nose = model[_nose_points(get_scheme(POSE_SCHEME)), 2].min()
    log.info("derived the 3D mean face from %d train shapes: width %.1f mm, height %.1f mm, nose tip %.1f mm "
             "in front of the centroid; saved %s", len(shapes), np.ptp(model[:, 0]), np.ptp(model[:, 1]),
             -nose, args.out)


if __name__ == "__main__":
    main()
