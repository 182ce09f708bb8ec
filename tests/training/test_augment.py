"""Training augmentation (training.augment) against the run-time crop policy: the plain crop IS the
policy crop, jitter only moves the window, and the flip relabels with the scheme's mirror permutation."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from core.offline.datasets import read_pts, visible_mask
from core.geometry import crop_from_landmarks, landmark_box, transform_points, warp_to_crop
from core.schemes import IBUG68, get_scheme
from training.augment import AugmentConfig, augment, crop_with_jitter, flip

IBUG = get_scheme("ibug68")
FACE = "ibug68/300w_helen_train/100032540_1"


@pytest.fixture(scope="module")
def face(shared_data: Path) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    return cv2.imread(str(shared_data / f"{FACE}.jpg")), read_pts(shared_data / f"{FACE}.pts").astype(np.float64)


@pytest.mark.parametrize("size", [128, 224])
def test_plain_crop_is_the_run_time_policy_crop(face: tuple[np.ndarray, np.ndarray], size: int) -> None:
    image, pts = face
    crop, crop_pts = crop_with_jitter(image, pts, None, AugmentConfig(), size)
    matrix = crop_from_landmarks(pts, size)
    np.testing.assert_array_equal(crop, warp_to_crop(image, matrix, size))
    np.testing.assert_allclose(crop_pts, transform_points(pts, matrix), atol=1e-3)


def test_jitter_only_moves_the_window_within_its_ranges(face: tuple[np.ndarray, np.ndarray]) -> None:
    image, pts = face
    config = AugmentConfig(wide_rotation_prob=0.0, rotation_std=0.0, scale_jitter=0.1, shift_jitter=0.06)
    plain = landmark_box(crop_with_jitter(image, pts, None, config, 160)[1])
    for seed in range(10):
        _, jittered = crop_with_jitter(image, pts, np.random.default_rng(seed), config, 160)
        box = landmark_box(jittered)
        assert np.exp(-0.1) - 1e-6 <= plain.size / box.size <= np.exp(0.1) + 1e-6  # scale ±10 %
        shift = np.subtract(box.center, plain.center) / 160
        assert np.abs(shift).max() <= 0.06 * np.exp(0.1) + 1e-6  # shift ±6 % of the crop side


def test_flip_mirrors_pixels_and_relabels_with_the_permutation(face: tuple[np.ndarray, np.ndarray]) -> None:
    image, pts = face
    crop, crop_pts = crop_with_jitter(image, pts, None, AugmentConfig(), 128)
    flipped, flipped_pts = flip(crop, crop_pts, IBUG)
    np.testing.assert_array_equal(flipped, crop[:, ::-1])
    mirror = list(IBUG.mirror)
    np.testing.assert_allclose(flipped_pts[:, 0], 127 - crop_pts[mirror, 0], atol=1e-4)
    np.testing.assert_allclose(flipped_pts[:, 1], crop_pts[mirror, 1])
    lo, ro = IBUG.outer_eye_corners
    assert flipped_pts[lo, 0] < flipped_pts[ro, 0], "the image-left eye stays labelled left after the flip"
    back_crop, back = flip(flipped, flipped_pts, IBUG)
    np.testing.assert_array_equal(back_crop, crop)
    np.testing.assert_allclose(back, crop_pts, atol=1e-4)


def test_full_augmentation_keeps_every_point_on_its_content(face: tuple[np.ndarray, np.ndarray]) -> None:
    """All 68 points stay visible and inside a generous window through rotation, flip and colour."""
    image, pts = face
    for seed in range(12):
        crop, out = augment(image, pts, IBUG, np.random.default_rng(seed), AugmentConfig(), 128)
        assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
        assert visible_mask(out).all() and out.min() > -40 and out.max() < 168


def _eye_picture() -> tuple[np.ndarray, np.ndarray]:
    """A light face with two dark eyes, each the polygon through its 68-point lids (the other points far
    below the eyes)."""
    image = np.full((120, 200, 3), 200, np.uint8)
    pts = np.tile([100.0, 110.0], (68, 1))
    for (outer, inner, upper, lower), cx in zip(IBUG68.eyes, (60, 140)):
        x_outer, x_inner = (cx - 24, cx + 24) if cx < 100 else (cx + 24, cx - 24)
        pts[outer], pts[inner] = (x_outer, 50), (x_inner, 50)
        step = (x_inner - x_outer) / 3
        pts[list(upper)] = [(x_outer + step, 41), (x_outer + 2 * step, 41)]
        pts[list(lower)] = [(x_outer + step, 59), (x_outer + 2 * step, 59)]
        outline = pts[[outer, *upper, inner, *reversed(lower)]]
        cv2.fillPoly(image, [np.round(outline).astype(np.int32)], (30, 30, 30))
    return image, pts


def test_closing_the_eyes_moves_the_upper_lids_and_the_pixels_under_them_together() -> None:
    from training.augment import close_eyes

    image, pts = _eye_picture()
    closed, moved = close_eyes(image, pts, IBUG68, 1.0)
    upper = [i for _, _, up, _ in IBUG68.eyes for i in up]
    lower = [i for _, _, _, low in IBUG68.eyes for i in low]
    np.testing.assert_allclose(moved[upper, 1], 59.0, atol=1e-6)  # shut: upper lids on the lower ones
    np.testing.assert_array_equal(moved[lower], pts[lower])  # the lower lids stay where they were
    np.testing.assert_array_equal(np.delete(moved, upper, axis=0), np.delete(pts, upper, axis=0))
    dark_before, dark_after = (image[..., 0] < 100).sum(), (closed[..., 0] < 100).sum()
    assert dark_after < 0.25 * dark_before  # the opening is squeezed to a line
    assert (closed[61:] == image[61:]).all()  # nothing below the lower lids moves
    half, half_pts = close_eyes(image, pts, IBUG68, 0.5)
    np.testing.assert_allclose(half_pts[upper, 1], 50.0, atol=1e-6)
    column = half[:, 60, 0]  # through the left eye's middle: dark from the lowered lid to the lower lid
    dark_rows = np.nonzero(column < 100)[0]
    assert abs(dark_rows.min() - 50) <= 2 and abs(dark_rows.max() - 59) <= 2


def test_an_eye_with_a_hidden_point_is_left_open() -> None:
    from training.augment import close_eyes

    image, pts = _eye_picture()
    pts[37] = np.nan
    closed, moved = close_eyes(image, pts, IBUG68, 1.0)
    assert np.isnan(moved[37]).all() and moved[38, 1] == pts[38, 1]  # that eye's lids as they were
    assert moved[44, 1] == pytest.approx(59.0)  # the other eye closes
    assert (closed[:, :100] == image[:, :100]).all()
