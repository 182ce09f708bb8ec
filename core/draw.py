"""The overlay: one drawing function shared by the window, the recorder and the headless runner, so a
recording looks exactly like the live view.

Drawing is split into small layers (points, contours, box, track id, confidence, pose axes, FPS), each
drawing one thing, switched on and off by :class:`DrawOptions` (the settings dialog's check boxes).
All lines are anti-aliased and sub-pixel positioned (OpenCV's ``shift`` argument), so landmarks do not
snap to whole pixels and a smoothed overlay looks smooth.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from core.geometry import Box
from core.pose import HeadPose, camera_matrix, load_mean_face
from core.results import FaceResult
from core.schemes import LandmarkScheme, get_scheme

#: Fixed-point bits for sub-pixel drawing (OpenCV ``shift``): coordinates are multiplied by 2**SHIFT.
SHIFT = 4
#: BGR colours cycled by track id, so two faces are told apart at a glance.
TRACK_COLOURS = ((80, 220, 80), (60, 180, 255), (255, 160, 60), (200, 90, 255), (60, 230, 230), (255, 90, 140))
#: Pose axes (x, y, forward) in BGR: red, green, blue, as in most 3D tools.
AXIS_COLOURS = ((0, 0, 255), (0, 200, 0), (255, 80, 0))
#: Length of the drawn pose axes in model millimetres (about half a face width).
AXIS_LENGTH_MM = 60.0
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass
class DrawOptions:
    """Which overlay layers to draw (all on by default except the uncertainty colouring).

    ``uncertainty`` colours and sizes each point by its anchor spread (green sure → red unsure) instead
    of the track colour; ``face_state`` writes eye and mouth openness and the blink count under the face.
    """

    points: bool = True
    contours: bool = True
    box: bool = True
    track_id: bool = True
    confidence: bool = True
    pose_axes: bool = True
    fps: bool = True
    uncertainty: bool = False
    face_state: bool = True


def draw_faces(frame: np.ndarray, faces: list[FaceResult], scheme: LandmarkScheme | str,
               options: DrawOptions | None = None, fps: float | None = None) -> np.ndarray:
    """Draw every enabled layer for every face onto ``frame`` (BGR uint8) in place and return it.

    ``scheme`` gives the contours; ``fps`` is shown top-left when given and the layer is on.
    """
    options = options or DrawOptions()
    scheme = get_scheme(scheme) if isinstance(scheme, str) else scheme
    layout = TextLayout([(face.track_id, face.box) for face in faces])
    for face in faces:
        if len(face.landmarks) != scheme.num_points:
            raise ValueError(f"face {face.track_id} has {len(face.landmarks)} landmarks, "
                             f"scheme {scheme.name} has {scheme.num_points}")
        colour = track_colour(face.track_id)
        for enabled, layer in _face_layers(options, face, layout):
            if enabled:
                layer(frame, face, scheme, colour)
    if options.fps and fps is not None:
        draw_fps(frame, fps)
    return frame


#: A text rectangle ``(x0, y0, x1, y1)`` in whole pixels.
Rect = tuple[int, int, int, int]


class TextLayout:
    """Where one frame's face texts may go: not over another face, nor over another face's text.

    In a crowd a face's lines (pose angles, eye and mouth openness) are wider than the face and ran
    over its neighbours, unreadable on both (the made six-face clip). Each text line offers its forms,
    longest first; the first that covers no other face's box and no text already placed for another face
    is drawn, and none when every form would (the numbers stay in the CSV and the window's plots). A
    lone face always gets the full form.
    """

    def __init__(self, faces: list[tuple[int, Box]]) -> None:
        self._taken: list[tuple[int, Rect]] = [(owner, (int(b.x0), int(b.y0), int(np.ceil(b.x1)), int(np.ceil(b.y1))))
                                               for owner, b in faces]

    def claim(self, owner: int, rect: Rect) -> bool:
        """Take ``rect`` for face ``owner``'s text if it is clear of the others' faces and texts."""
        if any(other != owner and _overlap(rect, taken) for other, taken in self._taken):
            return False
        self._taken.append((owner, rect))
        return True


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def track_colour(track_id: int) -> tuple[int, int, int]:
    return TRACK_COLOURS[track_id % len(TRACK_COLOURS)]


def _face_layers(options: DrawOptions, face: FaceResult, layout: TextLayout) -> list[tuple[bool, Callable[..., None]]]:
    return [
        (options.contours, draw_contours),
        (options.points and not (options.uncertainty and face.uncertainty is not None), draw_points),
        (options.points and options.uncertainty and face.uncertainty is not None, draw_uncertain_points),
        (options.box, draw_box),
        (options.track_id or options.confidence,
         functools.partial(draw_label, show_id=options.track_id, show_confidence=options.confidence, layout=layout)),
        (options.pose_axes, functools.partial(draw_pose_axes, layout=layout)),
        (options.face_state and face.state is not None, functools.partial(draw_face_state, layout=layout)),
    ]


def _fixed(points: np.ndarray) -> np.ndarray:
    """Float pixel coordinates → OpenCV fixed-point integers for ``shift=SHIFT``."""
    return np.round(np.asarray(points, dtype=np.float64) * (1 << SHIFT)).astype(np.int32)


def _scale(frame: np.ndarray) -> float:
    """Line widths and text sizes grow with the frame so 1080p overlays stay readable."""
    return max(1.0, min(frame.shape[:2]) / 480.0)


def draw_points(frame: np.ndarray, face: FaceResult, scheme: LandmarkScheme, colour: tuple[int, int, int]) -> None:
    radius = int(round(1.5 * _scale(frame) * (1 << SHIFT)))
    for x, y in _fixed(face.landmarks):
        cv2.circle(frame, (int(x), int(y)), radius, colour, -1, cv2.LINE_AA, SHIFT)


#: Uncertainty as a fraction of the face size (landmark box side) at which a point is fully green and
#: fully red. On the validation faces the median point's is 0.8 % of the face size, 1.5 % at the 90th
#: and 3 % at the 99th percentile (the anchor spreads behind benchmarks/uncertainty.py).
UNCERTAINTY_RANGE = (0.005, 0.025)


def uncertainty_colour(fraction: float) -> tuple[int, int, int]:
    """BGR from green (``fraction`` ≤ the range's low end) through yellow to red (≥ its high end)."""
    lo, hi = UNCERTAINTY_RANGE
    a = float(np.clip((fraction - lo) / (hi - lo), 0.0, 1.0))
    return (0, int(round(220 * min(1.0, 2 * (1 - a)))), int(round(255 * min(1.0, 2 * a))))


def draw_uncertain_points(frame: np.ndarray, face: FaceResult, scheme: LandmarkScheme,
                          colour: tuple[int, int, int]) -> None:
    """Each point coloured by its uncertainty relative to the face size, and larger when less sure."""
    base = 1.5 * _scale(frame)
    size = max(face.box.size, 1e-6)
    for (fx, fy), spread in zip(_fixed(face.landmarks), face.uncertainty):
        fraction = float(spread) / size
        grow = np.clip((fraction - UNCERTAINTY_RANGE[0]) / (UNCERTAINTY_RANGE[1] - UNCERTAINTY_RANGE[0]), 0, 1)
        radius = int(round(base * (1.0 + grow) * (1 << SHIFT)))
        cv2.circle(frame, (int(fx), int(fy)), radius, uncertainty_colour(fraction), -1, cv2.LINE_AA, SHIFT)


def draw_contours(frame: np.ndarray, face: FaceResult, scheme: LandmarkScheme, colour: tuple[int, int, int]) -> None:
    pts = _fixed(face.landmarks)
    dim = tuple(int(c * 0.6) for c in colour)
    thickness = max(1, int(round(_scale(frame))))
    for closed in (False, True):
        lines = [pts[list(c.indices)] for c in scheme.contours if c.closed == closed]
        if lines:
            cv2.polylines(frame, lines, closed, dim, thickness, cv2.LINE_AA, SHIFT)


def draw_box(frame: np.ndarray, face: FaceResult, scheme: LandmarkScheme, colour: tuple[int, int, int]) -> None:
    b = face.box
    corners = _fixed([[b.x0, b.y0], [b.x1, b.y0], [b.x1, b.y1], [b.x0, b.y1]])
    cv2.polylines(frame, [corners], True, colour, max(1, int(round(_scale(frame)))), cv2.LINE_AA, SHIFT)


def draw_label(frame: np.ndarray, face: FaceResult, scheme: LandmarkScheme, colour: tuple[int, int, int],
               show_id: bool = True, show_confidence: bool = True, layout: TextLayout | None = None) -> None:
    """Track id and/or confidence above the box (the id alone where both would cover a neighbour)."""
    parts = ([f"#{face.track_id}"] if show_id else []) + ([f"{face.confidence:.2f}"] if show_confidence else [])
    forms = [" ".join(parts)] + ([parts[0]] if len(parts) > 1 else [])
    _text(frame, forms, (face.box.x0, face.box.y0 - 6 * _scale(frame)), colour, face.track_id, layout)


def draw_pose_axes(frame: np.ndarray, face: FaceResult, scheme: LandmarkScheme, colour: tuple[int, int, int],
                   layout: TextLayout | None = None) -> None:
    """Head axes from the nose tip (x red, y green, facing direction blue) and the angles under the box."""
    pose = face.pose
    if pose is None:
        return
    h, w = frame.shape[:2]
    model = load_mean_face()
    tip = model[model[:, 2].argmin()]  # the point nearest the camera in the model frame: the nose tip
    ends = np.vstack([tip, tip + np.diag([AXIS_LENGTH_MM, AXIS_LENGTH_MM, -AXIS_LENGTH_MM])])
    projected, _ = cv2.projectPoints(ends, pose.rotation_vector, pose.translation_vector, camera_matrix((w, h)), None)
    origin, *axes = _fixed(projected[:, 0])
    thickness = max(1, int(round(2 * _scale(frame))))
    for end, axis_colour in zip(axes, AXIS_COLOURS):
        cv2.line(frame, tuple(int(v) for v in origin), tuple(int(v) for v in end), axis_colour, thickness,
                 cv2.LINE_AA, SHIFT)
    _text(frame, _angles_texts(pose), (face.box.x0, face.box.y1 + 16 * _scale(frame)), colour, face.track_id, layout)


def _angles_texts(pose: HeadPose) -> list[str]:
    """The angles line, long and short."""
    return [f"yaw {pose.yaw:+.0f} pitch {pose.pitch:+.0f} roll {pose.roll:+.0f}",
            f"y{pose.yaw:+.0f} p{pose.pitch:+.0f} r{pose.roll:+.0f}"]


def draw_face_state(frame: np.ndarray, face: FaceResult, scheme: LandmarkScheme,
                    colour: tuple[int, int, int], layout: TextLayout | None = None) -> None:
    """Eye aspect ratios, mouth openness and blinks: a line below the pose angles, or above the track
    label where the frame ends below the face (both would be pushed onto the same last line)."""
    s = face.state
    closed = " closed" if s.eyes_closed else ""
    forms = [f"eyes {s.eye_left:.2f}/{s.eye_right:.2f} mouth {s.mouth:.2f} blinks {s.blinks}{closed}",
             f"e{s.eye_left:.2f}/{s.eye_right:.2f} m{s.mouth:.2f} b{s.blinks}{closed}"]
    below = face.box.y1 + 34 * _scale(frame)
    y = below if below + 4 * _scale(frame) < frame.shape[0] else face.box.y0 - 24 * _scale(frame)
    _text(frame, forms, (face.box.x0, y), colour, face.track_id, layout)


def draw_fps(frame: np.ndarray, fps: float) -> None:
    _text(frame, f"{fps:.1f} fps", (8 * _scale(frame), 22 * _scale(frame)), (255, 255, 255))


def _text(frame: np.ndarray, forms: str | list[str], org: tuple[float, float], colour: tuple[int, int, int],
          owner: int = 0, layout: TextLayout | None = None) -> None:
    """Text with a one-pixel dark drop shadow, readable on any background (a thick anti-aliased
    outline would look similar but costs about 0.2 ms per string).

    ``org`` is the baseline start as OpenCV takes it; it is moved just enough to keep the whole text
    inside the frame, so labels above or below a face that fills the frame stay visible (they then
    sit on the face's edge, inside the image). ``forms``: the text, or its forms longest first, of
    which ``layout`` (when given) picks the first with room for face ``owner``'s text, or none."""
    scale = 0.5 * _scale(frame)
    for text in [forms] if isinstance(forms, str) else forms:
        x, y, rect = _inside(frame, text, scale, org)
        if layout is None or layout.claim(owner, rect):
            cv2.putText(frame, text, (x + 1, y + 1), FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
            cv2.putText(frame, text, (x, y), FONT, scale, colour, 1, cv2.LINE_AA)
            return


def _inside(frame: np.ndarray, text: str, scale: float, org: tuple[float, float]) -> tuple[int, int, Rect]:
    """The baseline origin nearest ``org`` at which ``text`` and its shadow lie inside the frame, and
    the rectangle they cover there."""
    (width, height), baseline = cv2.getTextSize(text, FONT, scale, 1)
    frame_h, frame_w = frame.shape[:2]
    x = min(max(int(round(org[0])), 0), max(frame_w - width - 2, 0))
    y = min(max(int(round(org[1])), height + 1), max(frame_h - baseline - 2, height + 1))
    return x, y, (x, y - height, x + width + 2, y + baseline + 2)
