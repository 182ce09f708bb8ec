"""Aggregation of per-anchor predictions (core.decode): every expected value below is worked out by hand."""
from __future__ import annotations

import numpy as np
import pytest

from core.decode import DEFAULT_THRESHOLD, STRATEGIES, aggregate

# One face, three anchors, two landmarks each.
A0 = [[0.0, 0.0], [10.0, 0.0]]
A1 = [[16.0, 0.0], [10.0, 16.0]]
A2 = [[100.0, 100.0], [100.0, 100.0]]
PREDS = np.array([[A0, A1, A2]], dtype=np.float32)  # [1, 3, 2, 2]


def test_defaults_are_the_papers() -> None:
    assert DEFAULT_THRESHOLD == 0.6
    assert set(STRATEGIES) == {"weighted", "argmax", "mean"}


def test_weighted_uses_confidences_as_weights_and_drops_anchors_below_threshold() -> None:
    # C = 0.9, 0.7 pass C_th = 0.6; 0.5 does not (its far-away anchor would pull the mean to ~100).
    # point 0: x = (0.9*0 + 0.7*16) / 1.6 = 7, y = 0; point 1: x = 10, y = (0.7*16) / 1.6 = 7.
    out = aggregate(PREDS, np.array([[0.9, 0.7, 0.5]]), "weighted", threshold=0.6)
    np.testing.assert_allclose(out.landmarks, [[[7.0, 0.0], [10.0, 7.0]]], atol=1e-5)
    np.testing.assert_allclose(out.confidence, [0.9], atol=1e-7)


def test_weighted_includes_an_anchor_exactly_at_threshold() -> None:
    # C = 0.7 with C_th = 0.7 passes: (0.9*0 + 0.7*16) / 1.6 = 7 for point 0's x.
    out = aggregate(PREDS, np.array([[0.9, 0.7, 0.5]]), "weighted", threshold=0.7)
    np.testing.assert_allclose(out.landmarks[0, 0], [7.0, 0.0], atol=1e-5)


def test_weighted_falls_back_to_argmax_when_no_anchor_passes() -> None:
    out = aggregate(PREDS, np.array([[0.2, 0.5, 0.4]]), "weighted", threshold=0.6)
    np.testing.assert_array_equal(out.landmarks, [A1])
    np.testing.assert_allclose(out.confidence, [0.5], atol=1e-7)


def test_argmax_takes_the_most_confident_anchor() -> None:
    out = aggregate(PREDS, np.array([[0.1, 0.3, 0.95]]), "argmax")
    np.testing.assert_array_equal(out.landmarks, [A2])
    np.testing.assert_allclose(out.confidence, [0.95], atol=1e-7)


def test_mean_ignores_confidences() -> None:
    # point 0: ((0+16+100)/3, (0+0+100)/3); point 1: ((10+10+100)/3, (0+16+100)/3)
    out = aggregate(PREDS, np.array([[0.99, 0.01, 0.01]]), "mean")
    np.testing.assert_allclose(out.landmarks, [[[116 / 3, 100 / 3], [40.0, 116 / 3]]], atol=1e-4)
    np.testing.assert_allclose(out.confidence, [0.99], atol=1e-7)


def test_weighted_is_vectorised_over_faces_with_different_fallbacks() -> None:
    preds = np.concatenate([PREDS, PREDS + 1.0, PREDS - 2.0])  # [3, 3, 2, 2]
    conf = np.array([
        [0.9, 0.7, 0.5],  # normal weighted mean -> [[7, 0], [10, 7]]
        [0.1, 0.2, 0.3],  # nobody passes -> argmax = anchor 2 (+1)
        [0.1, 0.8, 0.3],  # only anchor 1 passes -> anchor 1 exactly (-2)
    ])
    out = aggregate(preds, conf, "weighted", threshold=0.6)
    assert out.landmarks.shape == (3, 2, 2) and out.confidence.shape == (3,)
    np.testing.assert_allclose(out.landmarks[0], [[7.0, 0.0], [10.0, 7.0]], atol=1e-5)
    np.testing.assert_allclose(out.landmarks[1], np.array(A2) + 1.0, atol=1e-6)
    np.testing.assert_allclose(out.landmarks[2], np.array(A1) - 2.0, atol=1e-6)
    np.testing.assert_allclose(out.confidence, [0.9, 0.3, 0.8], atol=1e-7)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_direct_regression_model_passes_through_unchanged(strategy: str) -> None:
    # A direct model exports M = 1 with confidence 1: every strategy must return that one shape.
    preds = np.array([[A1]], dtype=np.float32)
    out = aggregate(preds, np.ones((1, 1)), strategy)
    np.testing.assert_array_equal(out.landmarks, [A1])
    np.testing.assert_array_equal(out.confidence, [1.0])


@pytest.mark.parametrize("preds_shape, conf_shape", [
    ((3, 2, 2), (1, 3)),  # landmarks not 4-D
    ((1, 3, 2, 3), (1, 3)),  # last axis not (x, y)
    ((1, 3, 2, 2), (1, 4)),  # confidence count != anchor count
    ((2, 3, 2, 2), (1, 3)),  # face count differs
])
def test_bad_shapes_raise(preds_shape: tuple[int, ...], conf_shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="expected landmarks"):
        aggregate(np.zeros(preds_shape), np.zeros(conf_shape))


def test_unknown_strategy_raises_and_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="weighted, argmax, mean"):
        aggregate(PREDS, np.array([[0.9, 0.7, 0.5]]), "median")


# --- per-landmark uncertainty (the passing anchors' spread around the aggregate) ---------------------

def test_uncertainty_is_the_confidence_weighted_spread_of_passing_anchors() -> None:
    # C = 0.9, 0.7 pass; aggregate point 0 = (7, 0): A0 is 7 px away, A1 9 px ->
    # sqrt((0.9*49 + 0.7*81) / 1.6) = sqrt(63) ; point 1 = (10, 7): A0 7 px, A1 9 px -> the same.
    out = aggregate(PREDS, np.array([[0.9, 0.7, 0.5]]), "weighted", threshold=0.6)
    np.testing.assert_allclose(out.uncertainty, [[np.sqrt(63.0), np.sqrt(63.0)]], rtol=1e-5)


def test_uncertainty_is_measured_around_each_strategys_own_shape() -> None:
    conf = np.array([[0.9, 0.7, 0.5]])
    # argmax = A0: the passing anchors A0 (0 px) and A1 (16 px at point 0, 16 px at point 1):
    # sqrt(0.7*256 / 1.6) = sqrt(112) for both points.
    argmax = aggregate(PREDS, conf, "argmax", threshold=0.6)
    np.testing.assert_allclose(argmax.uncertainty, [[np.sqrt(112.0)] * 2], rtol=1e-5)
    # mean of all three: point 0 at (116/3, 100/3); spread of A0, A1 around it, weights 0.9, 0.7.
    mean = aggregate(PREDS, conf, "mean", threshold=0.6)
    centre = np.array([116 / 3, 100 / 3])
    d0, d1 = np.sum((np.array(A0[0]) - centre) ** 2), np.sum((np.array(A1[0]) - centre) ** 2)
    np.testing.assert_allclose(mean.uncertainty[0, 0], np.sqrt((0.9 * d0 + 0.7 * d1) / 1.6), rtol=1e-5)


def test_uncertainty_grows_with_disagreement_and_is_zero_when_anchors_agree() -> None:
    agree = np.repeat(np.array([[A1]], dtype=np.float32), 4, axis=1)  # four identical anchors
    out = aggregate(agree, np.full((1, 4), 0.9), "weighted")
    np.testing.assert_allclose(out.uncertainty, 0.0, atol=1e-6)
    spread = agree.copy()
    spread[0, :, 1, 0] += [-3.0, 3.0, -3.0, 3.0]  # only point 1 disagrees, by ±3 px in x
    out = aggregate(spread, np.full((1, 4), 0.9), "weighted")
    np.testing.assert_allclose(out.uncertainty, [[0.0, 3.0]], atol=1e-5)


def test_uncertainty_falls_back_to_all_anchors_when_fewer_than_two_pass() -> None:
    # Only A1 passes: its spread alone would be 0. All three, weights 0.1, 0.8, 0.3, around A1 instead:
    # point 0: A0 16 px, A2 |(84, 100)|; point 1: A0 16 px, A2 |(90, 84)|.
    out = aggregate(PREDS, np.array([[0.1, 0.8, 0.3]]), "weighted", threshold=0.6)
    expected = [np.sqrt((0.1 * 256 + 0.3 * (84 ** 2 + 100 ** 2)) / 1.2),
                np.sqrt((0.1 * 256 + 0.3 * (90 ** 2 + 84 ** 2)) / 1.2)]
    np.testing.assert_allclose(out.uncertainty, [expected], rtol=1e-5)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_direct_regression_model_reports_no_uncertainty(strategy: str) -> None:
    assert aggregate(np.array([[A1]], dtype=np.float32), np.ones((1, 1)), strategy).uncertainty is None


def test_uncertainty_maps_to_image_pixels_with_the_crop_scale() -> None:
    from core.decode import uncertainty_to_image
    from core.geometry import invert_affine, square_crop_transform
    # A 448-px square shown at 224 crop pixels: one crop pixel is two image pixels, at any rotation.
    to_crop = square_crop_transform((300.0, 200.0), 448.0, 224, angle_deg=30.0)
    np.testing.assert_allclose(uncertainty_to_image(np.array([1.5, 4.0]), invert_affine(to_crop)), [3.0, 8.0],
                               rtol=1e-5)


def test_the_mirrored_pass_maps_back_onto_the_unmirrored_one() -> None:
    """A mirror-consistent 'model' (each point at a bright pixel plus an offset whose mirror point has the
    x-negated offset) must give identical points from both passes; a slip of the flip convention
    (S − x instead of S − 1 − x) or of the permutation would pull them 1 px or more apart."""
    from core.decode import with_mirrored_pass
    from core.schemes import IBUG68

    size = 32
    offsets = np.random.default_rng(1).uniform(-4, 4, size=(68, 2))
    for i, j in enumerate(IBUG68.mirror):  # mirror-consistent: a point's mirror partner has its x negated
        if i < j:
            offsets[j] = offsets[i] * [-1.0, 1.0]
        elif i == j:
            offsets[i, 0] = 0.0  # points on the axis stay on it

    def bright_pixel_model(crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows, cols = np.unravel_index(crops.max(axis=3).reshape(len(crops), -1).argmax(axis=1), (size, size))
        points = np.stack([cols, rows], axis=1)[:, None, None, :] + offsets[None, None]
        return np.repeat(points, 3, axis=1).astype(np.float32), np.full((len(crops), 3), 0.9, np.float32)

    crops = np.zeros((2, size, size, 3), np.uint8)
    crops[0, 7, 20] = crops[1, 25, 3] = 255
    single, _ = bright_pixel_model(crops)
    both, confidence = with_mirrored_pass(bright_pixel_model, crops, IBUG68.mirror)
    assert both.shape == (2, 6, 68, 2) and confidence.shape == (2, 6)
    np.testing.assert_allclose(both[:, 3:], single, atol=1e-5)
