"""The trackers users already know, wrapped just enough to be measured beside ours on the same frames:
MediaPipe Face Mesh (its bundled offline model) and dlib's HOG detector + 68-point shape predictor.

Both are optional: MediaPipe ships with the app's detector, dlib comes from the ``bench`` extra
(``pip install dlib-bin face-recognition-models``). Each ``*_unavailable_reason`` says why a peer is
skipped, so a benchmark reports the reason instead of failing.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from core.geometry import Box

#: Outer eye corners in MediaPipe's 468-point mesh (subject's right, left): its inter-ocular distance,
#: the same normalisation as iBUG 36/45 for ours.
MESH_EYE_CORNERS = (33, 263)
#: dlib's 68-point model file inside the face_recognition_models package.
DLIB_MODEL_FILE = "shape_predictor_68_face_landmarks.dat"


def mesh_unavailable_reason() -> str | None:
    """Why MediaPipe Face Mesh cannot run here, or None."""
    if importlib.util.find_spec("mediapipe") is None:
        return "mediapipe is not installed"
    return None


def dlib_model_path() -> Path | None:
    """dlib's 68-point predictor file, found without importing face_recognition_models (its
    ``__init__`` needs ``pkg_resources``, which recent setuptools no longer ship)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / DLIB_MODEL_FILE
    return path if path.is_file() else None


def dlib_unavailable_reason() -> str | None:
    """Why dlib cannot run here, or None."""
    if importlib.util.find_spec("dlib") is None:
        return "dlib is not installed (pip install dlib-bin)"
    if dlib_model_path() is None:
        return f"{DLIB_MODEL_FILE} not found (pip install face-recognition-models)"
    return None


class FaceMeshPeer:
    """MediaPipe Face Mesh in video mode (``static_image_mode=False``: it tracks from its own last
    landmarks, as ours does), one face, no iris refinement: the setting a webcam app would use."""

    name = "MediaPipe Face Mesh"
    eye_corners = MESH_EYE_CORNERS

    def __init__(self, max_faces: int = 1, static_image_mode: bool = False) -> None:
        from core.partial_imports import mediapipe_solution  # optional; only Face Mesh, not all of mediapipe

        self._mesh = mediapipe_solution("face_mesh").FaceMesh(static_image_mode=static_image_mode,
                                                              max_num_faces=max_faces, refine_landmarks=False)

    def faces(self, frame_bgr: np.ndarray) -> list[np.ndarray]:
        """``[468, 2]`` image pixels of every face it reports (at most ``max_faces``)."""
        height, width = frame_bgr.shape[:2]
        result = self._mesh.process(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB))
        return [np.array([(p.x * width, p.y * height) for p in face.landmark], dtype=np.float64)
                for face in result.multi_face_landmarks or []]

    def landmarks(self, frame_bgr: np.ndarray) -> np.ndarray | None:
        """``[468, 2]`` image pixels of the first face, or None when it finds none."""
        return next(iter(self.faces(frame_bgr)), None)

    def close(self) -> None:
        self._mesh.close()


class DlibPeer:
    """dlib's frontal HOG detector and the 68-point (iBUG) shape predictor.

    dlib has no tracking mode: a dlib app detects in every frame, so :meth:`landmarks` does too.
    """

    name = "dlib HOG + 68-pt"

    def __init__(self, upsample: int = 0) -> None:
        reason = dlib_unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        import dlib

        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(dlib_model_path()))
        self.upsample = upsample

    def detect(self, gray: np.ndarray) -> list[Box]:
        """Raw dlib face boxes (its own framing, not the landmark box) in ``gray``'s pixels."""
        return [Box(float(r.left()), float(r.top()), float(r.right()), float(r.bottom()))
                for r in self._detector(gray, self.upsample)]

    def fit(self, gray: np.ndarray, box: Box) -> np.ndarray:
        """``[68, 2]`` landmarks inside ``box`` (dlib wants an integer rectangle)."""
        rect = self._dlib.rectangle(int(round(box.x0)), int(round(box.y0)), int(round(box.x1)), int(round(box.y1)))
        shape = self._predictor(gray, rect)
        return np.array([(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)], dtype=np.float64)

    def landmarks(self, frame_bgr: np.ndarray) -> np.ndarray | None:
        """Detect, then fit the largest face: ``[68, 2]`` image pixels, or None."""
        gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
        boxes = self.detect(gray)
        if not boxes:
            return None
        return self.fit(gray, max(boxes, key=lambda b: b.width * b.height))
