"""The landmarks CSV: which columns, and the rows of one frame.

Layout (stated in the recording's sidecar as :data:`LAYOUT`): **at least one row per frame**. A frame
with faces has one row per face (``face`` = 0, 1, … within the frame, ``success`` = 1); a frame with
no face has exactly one row with ``face_count`` 0, ``success`` 0 and the face columns empty. So "no
face" and "frame lost" never look the same: every processed frame index appears in the file. This is
OpenFace's convention (one row per face with a ``success`` flag), with the face index made explicit.

Columns come in groups (:class:`ColumnGroup`): the frame columns, then each face group in order. A new
optional group (e.g. per-point uncertainty) is one more class with a ``header`` and ``values``; rows
stay rectangular because an empty face row gets one empty cell per column of every face group.
"""
from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from core.results import FaceResult

#: What the sidecar says about the row layout (the header shows it too: ``face_count``, ``face``).
LAYOUT = ("one row per face per frame (face = 0, 1, ... within the frame, success = 1); a frame without "
          "a face has one row with face_count = 0, success = 0 and empty face columns")


class ColumnGroup(Protocol):
    """A block of per-face columns: its names for a scheme of ``num_points``, and one face's values."""

    def header(self, num_points: int) -> list[str]: ...

    def values(self, face: FaceResult, num_points: int) -> list[str]: ...


class TrackColumns:
    """``track_id`` (stable while the face is followed) and the face ``confidence``."""

    def header(self, num_points: int) -> list[str]:
        return ["track_id", "confidence"]

    def values(self, face: FaceResult, num_points: int) -> list[str]:
        return [str(int(face.track_id)), f"{float(face.confidence):.4f}"]


class PoseColumns:
    """``yaw``, ``pitch``, ``roll`` in degrees (empty where the pose could not be fitted)."""

    def header(self, num_points: int) -> list[str]:
        return ["yaw", "pitch", "roll"]

    def values(self, face: FaceResult, num_points: int) -> list[str]:
        if face.pose is None:
            return ["", "", ""]
        return [f"{a:.2f}" for a in (face.pose.yaw, face.pose.pitch, face.pose.roll)]


class LandmarkColumns:
    """``x0, y0, x1, y1, …`` in image pixels."""

    def header(self, num_points: int) -> list[str]:
        return [f"{axis}{i}" for i in range(num_points) for axis in ("x", "y")]

    def values(self, face: FaceResult, num_points: int) -> list[str]:
        pts = np.asarray(face.landmarks, dtype=np.float64)
        if pts.shape != (num_points, 2):
            raise ValueError(f"face {face.track_id}: expected {num_points} landmarks, got {pts.shape}")
        return [f"{v:.2f}" for v in pts.ravel()]


class PositionColumns:
    """``head_x_mm``, ``head_y_mm``, ``head_z_mm``: the head's position in the camera frame (x right, y down,
    z away), from the pose fit under the camera model the sidecar states (empty without a pose)."""

    def header(self, num_points: int) -> list[str]:
        return ["head_x_mm", "head_y_mm", "head_z_mm"]

    def values(self, face: FaceResult, num_points: int) -> list[str]:
        position = face.position
        return ["", "", ""] if position is None else [f"{v:.1f}" for v in position]


class FaceStateColumns:
    """``eye_left``, ``eye_right`` (eye aspect ratios), ``mouth`` (inner-lip aspect ratio), ``eyes_closed``
    and ``blink`` (0/1: a blink ended this frame), ``blinks`` (the track's count); see ``core.face_state``."""

    def header(self, num_points: int) -> list[str]:
        return ["eye_left", "eye_right", "mouth", "eyes_closed", "blink", "blinks"]

    def values(self, face: FaceResult, num_points: int) -> list[str]:
        s = face.state
        if s is None:
            return [""] * 6
        return [f"{s.eye_left:.4f}", f"{s.eye_right:.4f}", f"{s.mouth:.4f}", str(int(s.eyes_closed)),
                str(int(s.blink)), str(int(s.blinks))]


class UncertaintyColumns:
    """``u0, u1, …``: each point's anchor spread in image pixels (optional group; empty for a
    single-anchor model)."""

    def header(self, num_points: int) -> list[str]:
        return [f"u{i}" for i in range(num_points)]

    def values(self, face: FaceResult, num_points: int) -> list[str]:
        if face.uncertainty is None:
            return [""] * num_points
        return [f"{v:.2f}" for v in np.asarray(face.uncertainty, dtype=np.float64)]


#: The columns written by default, in order (after the frame columns). Groups added later go after the
#: landmarks, so a reader that counts columns keeps finding the earlier ones where they were.
DEFAULT_GROUPS: tuple[ColumnGroup, ...] = (TrackColumns(), PoseColumns(), LandmarkColumns(), PositionColumns(),
                                           FaceStateColumns())
#: The default columns and each point's uncertainty after the landmarks (``--uncertainty-columns``).
WITH_UNCERTAINTY: tuple[ColumnGroup, ...] = DEFAULT_GROUPS + (UncertaintyColumns(),)
FRAME_COLUMNS = ["frame", "timestamp", "face_count", "face", "success"]


class LandmarkTable:
    """Builds the header and each frame's rows for a scheme of ``num_points`` landmarks."""

    def __init__(self, num_points: int, groups: Sequence[ColumnGroup] = DEFAULT_GROUPS) -> None:
        self.num_points = num_points
        self.groups = tuple(groups)
        self.columns = FRAME_COLUMNS + [name for g in self.groups for name in g.header(num_points)]
        self._empty = [""] * (len(self.columns) - len(FRAME_COLUMNS))

    def header_line(self) -> str:
        return ",".join(self.columns) + "\n"

    def frame_lines(self, frame_index: int, timestamp: float, faces: Sequence[FaceResult]) -> tuple[str, int]:
        """The frame's rows as text, and how many rows that is (faces validated before anything is built)."""
        stem = f"{int(frame_index)},{float(timestamp):.6f},{len(faces)}"
        if not faces:
            return ",".join([stem, "", "0", *self._empty]) + "\n", 1
        lines = []
        for k, face in enumerate(faces):
            cells = [value for g in self.groups for value in g.values(face, self.num_points)]
            lines.append(",".join([stem, str(k), "1", *cells]) + "\n")
        return "".join(lines), len(lines)
