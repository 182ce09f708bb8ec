"""Head pose (yaw, pitch, roll) from 68 iBUG landmarks, by fitting a 3D mean face with ``cv2.solvePnP``.

Why a derived model: a head-pose readout needs a 3D face whose points correspond to the 2D landmarks.
Instead of copying a third-party 3D model we recover one from our own training shapes by rigid
structure from motion (Tomasi–Kanade factorisation under a scaled orthographic camera + metric
upgrade): many 2D views of roughly the same face in different poses pin down its depth.
``python -m tools.mean_face --data ../shared/data`` regenerates the shipped asset
(``assets/mean_face_3d_ibug68.npy``) from the train split.

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

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.paths import MEAN_FACE_3D
from core.schemes import get_scheme

log = logging.getLogger(__name__)

POSE_SCHEME = "ibug68"
#: Adult outer-eye-corner (exocanthion) distance used to give the model millimetre units; adult means
#: are 86–93 mm (Farkas' anthropometry), so 90 mm is a round representative value. It only scales the
#: translation, never the angles.
INTER_OCULAR_MM = 90.0

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


# --- pose estimation ------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def load_mean_face(path: Path = MEAN_FACE_3D) -> np.ndarray:
    """The shipped 3D mean face ``[68, 3]`` in mm (read once; never unpickled)."""
    try:
        model = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"{path}: cannot read the 3D mean face ({exc}); regenerate it with "
                           "`python -m tools.mean_face --data ../shared/data`") from exc
    expected = (get_scheme(POSE_SCHEME).num_points, 3)
    if model.shape != expected or not np.isfinite(model).all():
        raise RuntimeError(f"{path}: expected a finite {expected} array, got {model.shape} {model.dtype}")
    return model.astype(np.float64)


@functools.lru_cache(maxsize=1)
def _rigid_points() -> np.ndarray:
    scheme = get_scheme(POSE_SCHEME)
    moving = {i for c in scheme.contours if c.name in NON_RIGID_CONTOURS for i in c.indices}
    return np.array([i for i in range(scheme.num_points) if i not in moving])


#: The camera :func:`camera_matrix` assumes, as recordings state it in their sidecar.
CAMERA_MODEL = {"type": "pinhole, no lens distortion", "focal_length_px": "image width (about 53 degrees "
                "horizontal field of view)", "principal_point": "image centre (w / 2, h / 2)",
                "position": "translation of the 3D mean face's centroid, mm, camera frame: x right, y down, z away",
                "scale": f"{INTER_OCULAR_MM:g} mm between the outer eye corners (distance scales with true face size "
                "and focal length)"}


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
    landmarks too close together to fit (a collapsed output: SQPnP asserts on it), or a failed solve. Uses SQPnP
    (globally optimal, no initial guess needed) on the rigid points (no jaw, no inner lips). No
    Levenberg–Marquardt refinement after it: on the Pexels clip's tracked landmarks it moved the angles by
    0.1° on average (at most 0.5°, far inside a mean face's own error) for 0.24 ms a frame, 5 % of the
    whole per-frame cost.
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
