"""Training augmentation (training.augment) against the run-time crop policy: the plain crop IS the
policy crop, jitter only moves the window, and the flip relabels with the scheme's mirror permutation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.offline.datasets import read_pts, visible_mask
from core.geometry import crop_from_landmarks, landmark_box, transform_points, warp_to_crop
from core.schemes import get_scheme
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
