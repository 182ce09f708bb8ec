"""Anchor points and templates (core.anchors): layout, roll direction, buckets, k-means, persistence."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.anchors import (AnchorConfig, anchor_points, build_templates, eye_line_angle, eye_width_ratio,
                          handdesign_base_shapes, kmeans_base_shapes, load_templates, mirror_shape,
                          normalise_shapes, place_templates, roll_templates, rotation_matrix, save_templates)
from core.offline.datasets import read_dataset, select_split
from core.geometry import crop_from_landmarks, square_crop_transform, transform_points
from core.schemes import get_scheme

IBUG = get_scheme("ibug68")
MID = 111.5


def _angle_deg(vector: np.ndarray) -> float:
    """Direction of an image-space vector, counter-clockwise as displayed (image y points down)."""
    return float(np.degrees(np.arctan2(-vector[1], vector[0])))


@pytest.fixture(scope="module")
def train_crop_shapes(shared_data: Path) -> dict[str, np.ndarray]:
    """Training shapes in crop pixels, per scheme, cropped by the crop policy."""
    records = select_split(read_dataset(shared_data), "train")
    shapes: dict[str, list[np.ndarray]] = {}
    for r in records:
        shapes.setdefault(r.scheme, []).append(transform_points(r.landmarks, crop_from_landmarks(r.landmarks)))
    return {name: np.stack(s) for name, s in shapes.items()}


# --- anchor points -----------------------------------------------------------------------------

def test_anchor_points_grid_layout() -> None:
    pts = anchor_points()
    assert pts.shape == (49, 2)
    np.testing.assert_allclose(pts.mean(axis=0), [MID, MID], atol=1e-12)
    np.testing.assert_allclose(pts[0], [87.5, 87.5])  # 111.5 - 28 + 4
    np.testing.assert_allclose(pts[-1], [135.5, 135.5])
    # Row-major: the next anchor is 8 px to the right, the next row 8 px down.
    np.testing.assert_allclose(pts[1] - pts[0], [8.0, 0.0])
    np.testing.assert_allclose(pts[7] - pts[0], [0.0, 8.0])
    np.testing.assert_allclose(anchor_points(grid=1), [[MID, MID]])


# --- rotation conventions ----------------------------------------------------------------------

def test_rotation_is_counter_clockwise_as_displayed() -> None:
    np.testing.assert_allclose(rotation_matrix(90.0) @ [1.0, 0.0], [0.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(rotation_matrix(90.0) @ [0.0, -1.0], [-1.0, 0.0], atol=1e-12)
    # Same convention as the crop policy's augmentation rotation.
    np.testing.assert_allclose(square_crop_transform((0, 0), 224.0, angle_deg=30.0)[:, :2], rotation_matrix(30.0),
                               atol=1e-12)
    base = np.array([[[1.0, 0.0], [0.0, 2.0]]])
    rolled = roll_templates(base, 4)
    np.testing.assert_allclose(rolled[1], [[0.0, -1.0], [2.0, 0.0]], atol=1e-12)  # 90 degrees
    np.testing.assert_allclose(rolled[2], [[-1.0, 0.0], [0.0, -2.0]], atol=1e-12)  # 180 degrees


def test_eye_line_angle_hand_computed() -> None:
    shape = np.zeros((1, 68, 2))
    shape[0, 45] = (10.0, -10.0)  # right outer corner up and to the right of the left one at (0, 0)
    np.testing.assert_allclose(eye_line_angle(shape, IBUG), [45.0])
    shape[0, 45] = (10.0, 10.0)
    np.testing.assert_allclose(eye_line_angle(shape, IBUG), [-45.0])


def test_normalise_shapes_removes_roll_about_the_crop_centre(train_crop_shapes: dict[str, np.ndarray]) -> None:
    shape = train_crop_shapes["ibug68"][:1]
    rolled = (shape - MID) @ rotation_matrix(30.0).T + MID
    a, b = normalise_shapes(np.concatenate([shape, rolled]), IBUG)
    np.testing.assert_allclose(a, b, atol=1e-9)
    np.testing.assert_allclose(eye_line_angle(np.stack([a]), IBUG), [0.0], atol=1e-9)


# --- eye width ratio and hand-designed buckets --------------------------------------------------

def _eyes(left_width: float, right_width: float, offset: float = 0.0) -> np.ndarray:
    """A synthetic 68-point shape: only the eye corners matter; the rest sit at ``offset``."""
    s = np.full((68, 2), offset)
    s[36], s[39] = (-5.0 - left_width, 0.0), (-5.0, 0.0)  # image-left eye: outer, inner
    s[42], s[45] = (5.0, 0.0), (5.0 + right_width, 0.0)  # image-right eye: inner, outer
    return s


def test_eye_width_ratio_sign_and_mirror() -> None:
    wide_left = _eyes(40.0, 5.0)
    r = eye_width_ratio(np.stack([wide_left, mirror_shape(wide_left, IBUG), _eyes(20.0, 20.0)]), IBUG)
    np.testing.assert_allclose(r, [40 / 5 - 5 / 40, -(40 / 5 - 5 / 40), 0.0], atol=1e-5)


def test_mirror_shape_is_an_involution_and_flips_x() -> None:
    s = _eyes(40.0, 5.0, offset=3.0)
    m = mirror_shape(s, IBUG)
    np.testing.assert_allclose(m[36], [-10.0, 0.0])  # new left outer corner = old right outer (10, 0) flipped
    np.testing.assert_allclose(mirror_shape(m, IBUG), s)


def test_handdesign_buckets_on_synthetic_shapes() -> None:
    left_turn = _eyes(5.0, 40.0)  # r = -7.875 < -6
    frontal_a, frontal_b = _eyes(20.0, 20.0, 1.0), _eyes(20.0, 18.0, 3.0)  # |r| = 0, 0.21
    right_turn = _eyes(40.0, 5.0, 2.0)  # r = +7.875 > 6
    base = handdesign_base_shapes(np.stack([right_turn, frontal_a, left_turn, frontal_b]), IBUG, gamma=6.0)
    assert base.shape == (3, 68, 2)
    np.testing.assert_allclose(base[0], left_turn)
    np.testing.assert_allclose(base[1], (frontal_a + frontal_b) / 2)
    np.testing.assert_allclose(base[2], right_turn)
    # An empty side bucket borrows the mirror of the opposite one, so K stays fixed.
    base = handdesign_base_shapes(np.stack([frontal_a, right_turn]), IBUG, gamma=6.0)
    np.testing.assert_allclose(base[0], mirror_shape(right_turn, IBUG))
    np.testing.assert_allclose(base[1], frontal_a)
    # With only frontal faces both sides are the mirrored frontal mean.
    base = handdesign_base_shapes(np.stack([frontal_a]), IBUG, gamma=6.0)
    np.testing.assert_allclose(base[0], mirror_shape(frontal_a, IBUG))
    np.testing.assert_allclose(base[2], mirror_shape(frontal_a, IBUG))


# --- k-means ----------------------------------------------------------------------------------

def test_kmeans_recovers_separated_clusters_in_left_to_right_order() -> None:
    rng = np.random.default_rng(3)
    proto = rng.normal(size=(68, 2)) * 20.0
    groups = [proto + (dx, 0.0) + rng.normal(scale=0.5, size=(10, 68, 2)) for dx in (30.0, -30.0, 0.0)]
    base = kmeans_base_shapes(np.concatenate(groups), 3, seed=0)
    np.testing.assert_allclose(base[0], groups[1].mean(axis=0), atol=1e-9)  # shifted left comes first
    np.testing.assert_allclose(base[1], groups[2].mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(base[2], groups[0].mean(axis=0), atol=1e-9)
    with pytest.raises(ValueError, match="at least 3"):
        kmeans_base_shapes(np.concatenate(groups)[:2], 3)


# --- templates from real training shapes --------------------------------------------------------

@pytest.mark.parametrize("scheme_name", ["ibug68", "wflw98"])
@pytest.mark.parametrize("method", ["kmeans", "handdesign"])
def test_build_templates_on_real_train_shapes(train_crop_shapes: dict[str, np.ndarray], scheme_name: str,
                                              method: str) -> None:
    scheme = get_scheme(scheme_name)
    config = AnchorConfig(method=method)
    templates = build_templates(train_crop_shapes[scheme_name], scheme, config)
    assert config.num_templates == 24
    assert templates.shape == (24, scheme.num_points, 2)
    assert np.isfinite(templates).all()
    lo, ro = scheme.outer_eye_corners
    for b in range(3):
        upright = templates[b * 8]
        for r in range(8):
            t = templates[b * 8 + r]
            # Roll r turns the eye line of the (upright) base by r * 45 degrees CCW as displayed.
            turned = (_angle_deg(t[ro] - t[lo]) - r * 45.0 + 180.0) % 360.0 - 180.0
            assert abs(turned) < 1e-6, (b, r, turned)
            # Rotation about the origin keeps every point's distance: size is preserved.
            np.testing.assert_allclose(np.linalg.norm(t, axis=1), np.linalg.norm(upright, axis=1), atol=1e-9)
    # Origin-centred: the templates span a face of about the policy's 224 / 1.5 pixels.
    extent = templates[0].max(axis=0) - templates[0].min(axis=0)
    assert 100.0 < extent.max() < 160.0


def test_build_templates_is_deterministic_for_a_seed(train_crop_shapes: dict[str, np.ndarray]) -> None:
    shapes = train_crop_shapes["ibug68"]
    a = build_templates(shapes, IBUG, AnchorConfig(seed=5))
    b = build_templates(shapes, IBUG, AnchorConfig(seed=5))
    np.testing.assert_array_equal(a, b)


def test_build_templates_rejects_bad_recipes() -> None:
    shapes = np.stack([_eyes(20.0, 20.0)] * 3) + MID
    with pytest.raises(ValueError, match="kmeans"):
        build_templates(shapes, IBUG, AnchorConfig(method="spectral"))
    with pytest.raises(ValueError, match="3 base"):
        build_templates(shapes, IBUG, AnchorConfig(method="handdesign", num_base=4))


# --- placement and persistence ------------------------------------------------------------------

def test_place_templates_index_is_anchor_major() -> None:
    rng = np.random.default_rng(0)
    templates = rng.normal(size=(24, 68, 2))
    points = anchor_points()
    placed = place_templates(templates, points)
    assert placed.shape == (49 * 24, 68, 2)
    for a, t in [(0, 0), (0, 23), (1, 0), (17, 5), (48, 23)]:
        np.testing.assert_allclose(placed[a * 24 + t], templates[t] + points[a])


def test_save_load_round_trip_without_pickle(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    templates = rng.normal(size=(24, 98, 2)) * 50.0
    config = AnchorConfig(grid=5, area=48.0, method="handdesign", gamma=2.5, seed=7)
    path = tmp_path / "templates.npz"
    save_templates(path, templates, config, get_scheme("wflw98"))
    with np.load(path, allow_pickle=False) as f:  # every entry is a plain array
        assert {"templates", "scheme", "method"} <= set(f.files)
    loaded, loaded_config, scheme_name = load_templates(path)
    assert loaded_config == config
    assert scheme_name == "wflw98"
    np.testing.assert_allclose(loaded, templates, atol=1e-4)  # stored as float32
    assert loaded.dtype == np.float64
