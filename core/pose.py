"""Head pose (yaw, pitch, roll) from 68 iBUG landmarks, by fitting a 3D mean face with ``cv2.solvePnP``.

Why a derived model: a head-pose readout needs a 3D face whose points correspond to the 2D landmarks.
Instead of copying a third-party 3D model we recover one from our own training shapes by rigid
structure from motion (Tomasi–Kanade factorisation under a scaled orthographic camera + metric
upgrade): many 2D views of roughly the same face in different poses pin down its depth.
``python -m core.pose --data ../shared/data --out assets/mean_face_3d_ibug68.npy`` regenerates the
shipped asset from the train split.

Model frame (millimetres, also OpenCV's camera axes for a frontal face): x towards the image's right,
y down, z away from the camera (the nose has negative z); origin at the centroid of the 68 points;
scaled so the outer eye corners are :data:`INTER_OCULAR_MM` apart. Pose angles are zero when the line
through the outer eye corners and the line from their midpoint to the midpoint of the mouth corners both
lie in the image plane, the eye line horizontal.

Sign convention (degrees, rotation model→camera decomposed as ``Rz(roll)·Ry(-yaw)·Rx(-pitch)``):

* **yaw** > 0 when the subject turns towards the image's right (the nose moves right in the image);
* **pitch** > 0 when the subject looks up (the nose moves up in the image);
* **roll** > 0 when the face rotates clockwise as displayed (the eye on the image's right moves down).

Only the ``ibug68`` scheme has a model; :func:`estimate_pose` returns ``None`` for any other scheme.
"""
from __future__ import annotations

import argparse
import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.schemes import Contour, LandmarkScheme, get_scheme

log = logging.getLogger(__name__)

POSE_SCHEME = "ibug68"
#: Adult outer-eye-corner (exocanthion) distance used to give the model millimetre units; adult means
#: are 86–93 mm (Farkas' anthropometry), so 90 mm is a round representative value. It only scales the
#: translation, never the angles.
INTER_OCULAR_MM = 90.0
MODEL_FILE = Path(__file__).resolve().parent.parent / "assets" / "mean_face_3d_ibug68.npy"
#: Contours whose points slide or deform: the jaw is annotated on the silhouette (a different 3D point
#: in every yaw) and the inner lips follow the mouth opening, so neither is used for the pose fit.
NON_RIGID_CONTOURS = ("jaw", "inner_lips")
#: Rigid points spanning fewer pixels than this (in x or y) have no pose to find: SQPnP rejects them
#: by its point-variance assertion (a 68-point face a few pixels wide fails it).
MIN_EXTENT_PX = 4.0


@dataclass(frozen=True)
class HeadPose:
    """Head orientation in degrees (see the module docstring for signs) and the raw PnP solution.

    ``rotation_vector`` (Rodrigues, 3) and ``translation_vector`` (mm, 3) map model points into the
    camera frame of a pinhole camera with focal length = image width and the principal point at the
    image centre.
    """

    yaw: float
    pitch: float
    roll: float
    rotation_vector: np.ndarray
    translation_vector: np.ndarray


# --- deriving the 3D mean face --------------------------------------------------------------------

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


# --- pose estimation ------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def load_mean_face(path: Path = MODEL_FILE) -> np.ndarray:
    """The shipped 3D mean face ``[68, 3]`` in mm (read once; never unpickled)."""
    try:
        model = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"{path}: cannot read the 3D mean face ({exc}); regenerate it with "
                           "`python -m core.pose --data ../shared/data --out assets/mean_face_3d_ibug68.npy`") from exc
    expected = (get_scheme(POSE_SCHEME).num_points, 3)
    if model.shape != expected or not np.isfinite(model).all():
        raise RuntimeError(f"{path}: expected a finite {expected} array, got {model.shape} {model.dtype}")
    return model.astype(np.float64)


@functools.lru_cache(maxsize=1)
def _rigid_points() -> np.ndarray:
    scheme = get_scheme(POSE_SCHEME)
    moving = {i for c in scheme.contours if c.name in NON_RIGID_CONTOURS for i in c.indices}
    return np.array([i for i in range(scheme.num_points) if i not in moving])


def camera_matrix(image_size: tuple[int, int]) -> np.ndarray:
    """The pinhole camera pose is estimated with: focal = image width, principal point at the centre.

    The true focal length of a webcam is unknown; width is a typical ~53° horizontal field of view and
    a wrong guess changes mostly the distance, little the angles.
    """
    w, h = image_size
    return np.array([[w, 0.0, w / 2.0], [0.0, w, h / 2.0], [0.0, 0.0, 1.0]])


def estimate_pose(landmarks: np.ndarray, image_size: tuple[int, int], scheme: str = POSE_SCHEME) -> HeadPose | None:
    """Head pose of one face from its landmarks ``[68, 2]`` in image pixels; ``image_size`` is ``(w, h)``.

    Returns ``None`` for schemes without a 3D model (anything but ibug68), non-finite landmarks,
    landmarks too close together to fit (a collapsed output: SQPnP asserts on it), or a failed solve. Uses SQPnP (globally optimal, no initial guess needed) refined by Levenberg–Marquardt
    on the rigid points (no jaw, no inner lips).
    """
    if scheme != POSE_SCHEME:
        return None
    pts = np.asarray(landmarks, dtype=np.float64)
    model = load_mean_face()
    if pts.shape != (len(model), 2) or not np.isfinite(pts).all():
        return None
    idx = _rigid_points()
    object_points, image_points = model[idx], pts[idx]
    k = camera_matrix(image_size)
    if np.ptp(image_points, axis=0).min() < MIN_EXTENT_PX:
        return None
    try:
        ok, rvec, tvec = cv2.solvePnP(object_points, image_points, k, None, flags=cv2.SOLVEPNP_SQPNP)
    except cv2.error as exc:  # degenerate input the guard above did not foresee: no pose, not a crash
        log.debug("solvePnP failed: %s", exc)
        return None
    if not ok or tvec[2, 0] <= 0:
        log.debug("solvePnP found no pose in front of the camera")
        return None
    rvec, tvec = cv2.solvePnPRefineLM(object_points, image_points, k, None, rvec, tvec)
    yaw, pitch, roll = rotation_to_angles(cv2.Rodrigues(rvec)[0])
    return HeadPose(yaw, pitch, roll, rvec.ravel(), tvec.ravel())


def rotation_to_angles(rotation: np.ndarray) -> tuple[float, float, float]:
    """``(yaw, pitch, roll)`` in degrees of a model→camera rotation (inverse of :func:`angles_to_rotation`)."""
    r = np.asarray(rotation, dtype=np.float64)
    about_y = np.arcsin(np.clip(-r[2, 0], -1.0, 1.0))
    about_x = np.arctan2(r[2, 1], r[2, 2])
    about_z = np.arctan2(r[1, 0], r[0, 0])
    return float(-np.degrees(about_y)), float(-np.degrees(about_x)), float(np.degrees(about_z))


def angles_to_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The model→camera rotation ``Rz(roll)·Ry(-yaw)·Rx(-pitch)`` for angles in degrees."""
    y, p, r = np.radians([-yaw, -pitch, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


# --- command line ---------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    """Regenerate the 3D mean face from a dataset's train split."""
    from core.datasets import read_dataset, select_split

    parser = argparse.ArgumentParser(
        prog="python -m core.pose",
        description="Derive the 3D ibug68 mean face used for head pose from 2D training shapes "
                    "(Tomasi-Kanade structure from motion) and save it as a .npy file.")
    parser.add_argument("--data", type=Path, required=True,
                        help="dataset folder (e.g. ../shared/data); only its ibug68 train-split faces are used")
    parser.add_argument("--out", type=Path, default=MODEL_FILE, help=f"output .npy file (default: {MODEL_FILE})")
    parser.add_argument("--inter-ocular-mm", type=float, default=INTER_OCULAR_MM,
                        help="distance between the outer eye corners in mm, which sets the model's scale "
                             f"(default: {INTER_OCULAR_MM})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    records = [r for r in select_split(read_dataset(args.data), "train") if r.scheme == POSE_SCHEME]
    model = derive_mean_face(np.stack([r.landmarks for r in records]), args.inter_ocular_mm)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, model.astype(np.float64), allow_pickle=False)
    nose = model[_nose_points(get_scheme(POSE_SCHEME)), 2].min()
    log.info("derived the 3D mean face from %d train shapes: width %.1f mm, height %.1f mm, nose tip %.1f mm "
             "in front of the centroid; saved %s", len(records), np.ptp(model[:, 0]), np.ptp(model[:, 1]),
             -nose, args.out)


if __name__ == "__main__":
    main()
