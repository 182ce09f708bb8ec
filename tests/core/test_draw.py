"""Overlay layers: each draws its own thing where it belongs, can be switched off, and is anti-aliased."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from core.draw import DrawOptions, draw_faces, track_colour
from core.geometry import Box, landmark_box
from core.pose import angles_to_rotation, camera_matrix, estimate_pose, load_mean_face
from core.results import FaceResult
from core.schemes import get_scheme

SIZE = (640, 360)
NONE = DrawOptions(**{f.name: False for f in dataclasses.fields(DrawOptions)})


@pytest.fixture(scope="module")
def frame(shared_data) -> np.ndarray:
    """The first frame of a real clip (a textured background, not a blank canvas)."""
    cap = cv2.VideoCapture(str(shared_data / "video" / "pyfeat_single_face.mp4"))
    ok, image = cap.read()
    cap.release()
    assert ok and image.shape == (360, 640, 3)
    return image


def face(track_id: int = 1, yaw: float = 15.0, distance_mm: float = 800.0) -> FaceResult:
    rvec = cv2.Rodrigues(angles_to_rotation(yaw, -5.0, 0.0))[0]
    pts = cv2.projectPoints(load_mean_face(), rvec, np.array([-20.0, 10.0, distance_mm]), camera_matrix(SIZE),
                            None)[0][:, 0]
    return FaceResult(track_id, pts, 0.87, landmark_box(pts), estimate_pose(pts, SIZE), "ibug68")


def only(**layers: bool) -> DrawOptions:
    return dataclasses.replace(NONE, **layers)


def changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Mask of pixels a layer touched."""
    return np.any(before != after, axis=2)


def test_draws_in_place_and_returns_the_frame(frame):
    canvas = frame.copy()
    assert draw_faces(canvas, [face()], "ibug68", DrawOptions(), fps=30.0) is canvas
    assert changed(frame, canvas).any()


def test_all_layers_off_draws_nothing(frame):
    canvas = draw_faces(frame.copy(), [face()], "ibug68", NONE, fps=30.0)
    assert not changed(frame, canvas).any()


def test_points_layer_marks_every_landmark_and_nothing_far_away(frame):
    f = face()
    mask = changed(frame, draw_faces(frame.copy(), [f], "ibug68", only(points=True)))
    xs, ys = np.round(f.landmarks).astype(int).T
    assert mask[ys, xs].all()
    far = np.ones_like(mask)
    for x, y in zip(xs, ys):
        far[max(0, y - 4): y + 5, max(0, x - 4): x + 5] = False
    assert not mask[far].any()


def test_points_are_anti_aliased(frame):
    """Edge pixels blend the point colour with the background (LINE_AA), not just the two colours."""
    blank = np.zeros_like(frame)
    f = face(track_id=0)
    canvas = draw_faces(blank.copy(), [f], "ibug68", only(points=True))
    colour = np.array(track_colour(0))
    touched = canvas[changed(blank, canvas)]
    partial = ~np.all(touched == colour, axis=1)
    assert partial.sum() > len(f.landmarks)


def test_contours_connect_the_scheme_lines(frame):
    f = face()
    scheme = get_scheme("ibug68")
    mask = changed(frame, draw_faces(frame.copy(), [f], scheme, only(contours=True)))
    for contour in scheme.contours:
        a, b = f.landmarks[contour.indices[0]], f.landmarks[contour.indices[1]]
        mid = np.round((a + b) / 2).astype(int)
        assert mask[mid[1], mid[0]], contour.name
    points_only = changed(frame, draw_faces(frame.copy(), [f], scheme, only(points=True)))
    jaw = scheme.contours[0].indices  # the first two jaw points are ~15 px apart in this face
    gap = f.landmarks[list(jaw[:2])].mean(axis=0).round().astype(int)
    assert not points_only[gap[1], gap[0]]  # points alone leave the gap empty


def test_box_layer_follows_the_box(frame):
    f = face()
    mask = changed(frame, draw_faces(frame.copy(), [f], "ibug68", only(box=True)))
    b = f.box
    assert mask[int(round(b.y0)), int((b.x0 + b.x1) / 2)] and mask[int((b.y0 + b.y1) / 2), int(round(b.x1))]
    assert not mask[int((b.y0 + b.y1) / 2), int((b.x0 + b.x1) / 2)]  # the inside is left alone


def test_labels_sit_above_the_box(frame):
    f = face()
    for options in (only(track_id=True), only(confidence=True)):
        mask = changed(frame, draw_faces(frame.copy(), [f], "ibug68", options))
        rows = np.nonzero(mask.any(axis=1))[0]
        assert len(rows) and rows.max() <= f.box.y0 + 2
    both = changed(frame, draw_faces(frame.copy(), [f], "ibug68", only(track_id=True, confidence=True))).sum()
    assert both > changed(frame, draw_faces(frame.copy(), [f], "ibug68", only(track_id=True))).sum()


def test_labels_of_a_face_that_fills_the_frame_stay_inside_it():
    """The demo's first seconds: the box reaches past the top and bottom edges. The id/confidence label
    (above the box) and the pose text (below it) must still be drawn, inside the image. On black, text
    pixels are shades of the track colour (B < G < R, all lit); the pose axes are pure R, G, B."""
    f = face(distance_mm=130.0)
    assert f.box.y0 < 0 and f.box.y1 > SIZE[1] and f.pose is not None
    assert track_colour(f.track_id) == (60, 180, 255)
    for options, rows in ((only(track_id=True, confidence=True), slice(0, 40)),
                          (only(pose_axes=True), slice(SIZE[1] - 40, SIZE[1]))):
        canvas = draw_faces(np.zeros((SIZE[1], SIZE[0], 3), np.uint8), [f], "ibug68", options).astype(int)
        b, g, r = canvas[rows].transpose(2, 0, 1)
        assert ((0 < b) & (b < g) & (g < r)).sum() > 20, options


def test_pose_layer_draws_axes_from_the_nose_and_skips_faces_without_pose(frame):
    f = face()
    mask = changed(frame, draw_faces(frame.copy(), [f], "ibug68", only(pose_axes=True)))
    tip = f.landmarks[int(load_mean_face()[:, 2].argmin())].round().astype(int)
    assert mask[tip[1] - 2: tip[1] + 3, tip[0] - 2: tip[0] + 3].any()
    no_pose = dataclasses.replace(f, pose=None)
    assert not changed(frame, draw_faces(frame.copy(), [no_pose], "ibug68", only(pose_axes=True))).any()


def test_fps_layer_needs_a_value(frame):
    assert not changed(frame, draw_faces(frame.copy(), [], "ibug68", only(fps=True), fps=None)).any()
    mask = changed(frame, draw_faces(frame.copy(), [], "ibug68", only(fps=True), fps=29.97))
    ys, xs = np.nonzero(mask)
    assert len(xs) and xs.max() < SIZE[0] // 3 and ys.max() < SIZE[1] // 5  # top-left corner


def test_faces_get_their_own_colours(frame):
    """On black, an anti-aliased box's brightest pixel is its track colour scaled by the coverage."""
    assert track_colour(1) != track_colour(2)
    for track_id in (1, 2):
        blank = np.zeros_like(frame)
        canvas = draw_faces(blank.copy(), [face(track_id=track_id)], "ibug68", only(box=True))
        brightest = canvas[changed(blank, canvas)].astype(float).max(axis=0)
        for other in (1, 2):
            colour = np.array(track_colour(other), float)
            cosine = brightest @ colour / np.linalg.norm(brightest) / np.linalg.norm(colour)
            assert (cosine > 0.999) == (other == track_id)


def test_other_schemes_draw_without_pose(frame):
    scheme = get_scheme("wflw98")
    pts = np.stack([np.linspace(200, 400, 98), 180 + 60 * np.sin(np.linspace(0, 6, 98))], axis=1)
    f = FaceResult(3, pts, 0.7, Box(200, 120, 400, 240), None, "wflw98")
    assert changed(frame, draw_faces(frame.copy(), [f], scheme, DrawOptions())).any()


def test_landmark_count_must_match_the_scheme(frame):
    with pytest.raises(ValueError, match="wflw98"):
        draw_faces(frame.copy(), [face()], "wflw98")


# --- the uncertainty layer (moved from the uncertainty benchmark's tests: it is core.draw's) ----------

def drawn_colours(uncertainty: np.ndarray | None, on: bool) -> tuple[np.ndarray, np.ndarray]:
    """Draw only the points of a face with ``uncertainty`` on black; the pixel at each point."""
    points = np.stack(np.meshgrid(np.linspace(100, 500, 17), np.linspace(60, 300, 4)), -1).reshape(-1, 2)[:68]
    face = FaceResult(1, points.astype(np.float32), 0.9, landmark_box(points), None, "ibug68", uncertainty)
    layers = {f.name: False for f in dataclasses.fields(DrawOptions)}
    canvas = draw_faces(np.zeros((360, 640, 3), np.uint8), [face], "ibug68",
                        DrawOptions(**{**layers, "points": True, "uncertainty": on}))
    xs, ys = np.round(points).astype(int).T
    return canvas[ys, xs].astype(int), canvas


def test_uncertainty_layer_colours_sure_points_green_and_unsure_ones_red() -> None:
    spread = np.where(np.arange(68) < 34, 0.5, 40.0).astype(np.float32)  # face size 400 px: 0.1 % and 10 %
    colours, canvas = drawn_colours(spread, on=True)
    sure, unsure = colours[:34], colours[34:]
    assert (sure[:, 1] > 150).all() and (sure[:, 2] < 60).all()  # green
    assert (unsure[:, 2] > 200).all() and (unsure[:, 1] < 60).all()  # red
    plain, plain_canvas = drawn_colours(spread, on=False)
    assert (plain == plain[0]).all()  # off: the track colour everywhere
    assert (canvas.any(axis=2).sum()) > (plain_canvas.any(axis=2).sum())  # unsure points drawn larger


def test_uncertainty_layer_without_uncertainty_draws_plain_points() -> None:
    with_layer, _ = drawn_colours(None, on=True)
    without, _ = drawn_colours(None, on=False)
    np.testing.assert_array_equal(with_layer, without)


def moved(f: FaceResult, dx: float, dy: float, track_id: int) -> FaceResult:
    pts = f.landmarks + np.array([dx, dy])
    return FaceResult(track_id, pts, f.confidence, landmark_box(pts), estimate_pose(pts, SIZE), f.scheme)


@pytest.mark.parametrize("gap, drawn", [(150, "short"), (40, "none")])
def test_a_face_text_that_would_cover_a_neighbour_is_shortened_or_left_out(gap: int, drawn: str) -> None:
    """Face A's angles line goes under its box, over the row where face B (to its right and lower)
    stands. On its own A gets the long line; beside B the short one ("y+15 p-5 r+0") where that clears
    B's box, and no line where neither form does; B is never drawn over."""
    a = face(track_id=1)
    b = moved(a, a.box.x0 + gap - a.box.x0, a.box.height + 8, track_id=2)
    assert a.box.iou(b.box) == 0 and b.box.y0 < a.box.y1 + 10 < b.box.y1
    row = slice(int(a.box.y1 + 4), int(a.box.y1 + 18))  # the text's rows, below A's box and its axes
    x0, bx0 = int(a.box.x0), int(b.box.x0)
    blank = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    alone = changed(blank, draw_faces(blank.copy(), [a], "ibug68", only(pose_axes=True)))[row]
    both = changed(blank, draw_faces(blank.copy(), [a, b], "ibug68", only(pose_axes=True)))[row]
    assert alone[:, x0 + 150:x0 + 180].any(), "alone, the long line reaches past 150 px"
    left_of_b = both[:, x0:bx0]
    if drawn == "short":
        assert left_of_b[:, :60].any() and not left_of_b[:, 125:].any()  # the short form is 120 px wide
    else:
        assert not left_of_b.any()
