"""A geometry test that cannot be fooled: bright dots at known sub-pixel positions, carried through every
path that moves points, must stay where the pixels say they are.

Each of the 68 "landmarks" is the centre of a small Gaussian dot rendered at pixel centres (0-based: the
centre of the top-left pixel is (0, 0)). After every step — read from disk, loose crop, jittered and
rotated training crop, flip, resize, network-input warp, decode and the inverse map back to the image —
the intensity centroid of each dot and the carried point must agree within 0.05 px. A half-pixel or
one-pixel convention slip (a 1-based reader, ``W - x`` instead of ``W - 1 - x``, a resize that maps
corners instead of pixel centres) moves them apart by 0.5–2 px and fails here.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from core.decode import aggregate
from core.geometry import crop_from_landmarks, invert_affine, transform_points, warp_to_crop
from core.offline.datasets import read_manifest
from core.schemes import IBUG68
from training.augment import AugmentConfig, crop_with_jitter, flip
from training.data import loose_crop

TOLERANCE = 0.05  # px
SIGMA = 6.0  # px of the dots in the source image: after the crops shrink it ~3x a dot still spans ~2 px,
# smooth enough that bilinear sampling (which does not low-pass) keeps its centroid
IMAGE_SIZE = 640
WINDOW = 3.5  # centroid window radius in dot sigmas; neighbours (≥ 56 px = 9 sigma apart) stay out of it


def _dot_positions(rng: np.random.Generator) -> np.ndarray:
    """68 points on an 8×9 grid, 64 px apart, moved to random sub-pixel positions (≥ 56 px apart)."""
    ys, xs = np.mgrid[0:9, 0:8]
    grid = np.stack([xs.ravel(), ys.ravel()], axis=1)[:68].astype(np.float64)
    return 64.0 + grid * 64.0 + rng.uniform(-4, 4, size=(68, 2))


def _render(points: np.ndarray, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """uint8 BGR image: a Gaussian dot of peak 250 at each point, sampled at 0-based pixel centres."""
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    image = np.zeros(shape)
    for x, y in points:
        image += np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2))
    grey = np.clip(np.rint(250 * image), 0, 255).astype(np.uint8)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


def _centroids(image: np.ndarray, near: np.ndarray, radius: float) -> np.ndarray:
    """Intensity centroid of the dot around each point, the window re-centred on it until it settles
    (so a window that starts off-centre does not pull the answer toward where it started)."""
    grey = image.astype(np.float64).mean(axis=2) if image.ndim == 3 else image.astype(np.float64)
    reach = int(np.ceil(radius)) + 2
    found = []
    for centre in np.asarray(near, np.float64):
        for _ in range(6):
            x0, y0 = int(centre[0]) - reach, int(centre[1]) - reach
            ys, xs = np.mgrid[y0:y0 + 2 * reach + 1, x0:x0 + 2 * reach + 1]
            inside = (xs >= 0) & (ys >= 0) & (xs < grey.shape[1]) & (ys < grey.shape[0])
            window = inside & ((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 <= radius ** 2)
            weight = np.where(window, grey[ys.clip(0, grey.shape[0] - 1), xs.clip(0, grey.shape[1] - 1)], 0.0)
            centre = np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum()
        found.append(centre)
    return np.array(found)


def _assert_points_on_dots(image: np.ndarray, points: np.ndarray, sigma: float) -> None:
    measured = _centroids(image, points, WINDOW * sigma)
    error = np.abs(measured - points).max()
    assert error < TOLERANCE, f"carried points are {error:.3f} px from the dots' centroids"


@pytest.fixture(scope="module")
def dots() -> tuple[np.ndarray, np.ndarray]:
    points = _dot_positions(np.random.default_rng(7))
    return _render(points, (IMAGE_SIZE, IMAGE_SIZE), SIGMA), points


def test_the_rendered_dots_are_where_they_were_put(dots: tuple[np.ndarray, np.ndarray]) -> None:
    image, points = dots
    _assert_points_on_dots(image, points, SIGMA)
    with pytest.raises(AssertionError):  # the check itself sees a half-pixel slip
        _assert_points_on_dots(image, points + 0.5, SIGMA)


def test_read_then_loose_crop_then_jittered_rotated_crop_then_flip(dots: tuple[np.ndarray, np.ndarray],
                                                                    tmp_path: Path) -> None:
    image, points = dots
    cv2.imwrite(str(tmp_path / "dots.png"), image)
    body = "\n".join(f"{x:.4f} {y:.4f}" for x, y in points)
    (tmp_path / "dots.pts").write_text(f"version: 1\nn_points: 68\n{{\n{body}\n}}\n", encoding="utf-8")
    (tmp_path / "manifest.csv").write_text("image,pts,source,n_points,width,height\n"
                                           f"dots.png,dots.pts,made,68,{IMAGE_SIZE},{IMAGE_SIZE}\n", encoding="utf-8")
    (record,) = read_manifest(tmp_path)
    _assert_points_on_dots(record.load().image, record.landmarks, SIGMA)

    size = 160
    loose, loose_points = loose_crop(record, size)  # what training caches
    loose_scale = np.linalg.norm(loose_points[1] - loose_points[0]) / np.linalg.norm(points[1] - points[0])
    _assert_points_on_dots(loose, loose_points, SIGMA * loose_scale)

    rng = np.random.default_rng(3)
    config = AugmentConfig(wide_rotation_prob=1.0, scale_jitter=0.2, shift_jitter=0.1)
    for _ in range(4):  # any angle, scale and shift
        crop, crop_points = crop_with_jitter(loose, loose_points, rng, config, size)
        scale = np.linalg.norm(crop_points[1] - crop_points[0]) / np.linalg.norm(points[1] - points[0])
        _assert_points_on_dots(crop, crop_points, SIGMA * scale)
        mirrored, mirrored_points = flip(crop, crop_points, IBUG68)
        _assert_points_on_dots(mirrored, mirrored_points, SIGMA * scale)


def test_resize_maps_pixel_centres_as_the_data_readme_says(dots: tuple[np.ndarray, np.ndarray]) -> None:
    """The shared crops were shrunk with INTER_AREA; their points follow (x + 0.5)·r − 0.5."""
    image, points = dots
    for r, interpolation in ((0.5, cv2.INTER_AREA), (0.8, cv2.INTER_LINEAR)):
        side = int(round(IMAGE_SIZE * r))
        small = cv2.resize(image, (side, side), interpolation=interpolation)
        _assert_points_on_dots(small, (points + 0.5) * r - 0.5, SIGMA * r)
        with pytest.raises(AssertionError):
            _assert_points_on_dots(small, points * r, SIGMA * r)  # the old rule, corner-based


def test_network_input_crop_decode_and_inverse_map_return_to_the_dots(dots: tuple[np.ndarray, np.ndarray]) -> None:
    """The app's path: crop from last frame's landmarks, measure in the crop, aggregate the anchors'
    predictions (as decode does) and map back to the frame with the inverse affine."""
    image, points = dots
    size = 160
    matrix = crop_from_landmarks(points, size)  # the run-time crop policy
    crop = warp_to_crop(image, matrix, size)
    in_crop = transform_points(points, matrix)
    scale = matrix[0, 0]
    _assert_points_on_dots(crop, in_crop, SIGMA * scale)
    measured = _centroids(crop, in_crop, WINDOW * SIGMA * scale)
    rng = np.random.default_rng(0)
    anchors = measured[None, None] + rng.normal(0, 0.5, size=(1, 30, 68, 2))  # anchors scattered around it
    anchors -= anchors.mean(axis=1, keepdims=True) - measured  # ... and centred on it
    decoded = aggregate(anchors.astype(np.float32), np.full((1, 30), 0.9, np.float32)).landmarks[0]
    back = transform_points(decoded, invert_affine(matrix))
    assert np.abs(back - points).max() < TOLERANCE / scale
