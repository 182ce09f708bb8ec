"""Landmark metrics (core.offline.metrics) against values worked out by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from core.offline.metrics import anchor_errors, auc, ced_curve, failure_rate, nme, normaliser, pearson
from core.schemes import IBUG68, get_scheme

IBUG = get_scheme("ibug68")


def _face() -> np.ndarray:
    """A [1, 68, 2] ground truth inside the box x 0..60, y 0..80 with outer eye corners 40 px apart."""
    gt = np.full((1, 68, 2), 30.0)
    gt[0, 0] = (0.0, 0.0)
    gt[0, 1] = (60.0, 80.0)
    gt[0, 36] = (10.0, 30.0)  # image-left outer eye corner
    gt[0, 45] = (50.0, 30.0)  # image-right outer eye corner
    return gt


def test_normalisers() -> None:
    gt = _face()
    np.testing.assert_allclose(normaliser(gt, IBUG, "inter_ocular"), [40.0])
    np.testing.assert_allclose(normaliser(gt, IBUG, "box_diagonal"), [100.0])  # hypot(60, 80)
    np.testing.assert_allclose(normaliser(gt, IBUG, "face_size"), [math.sqrt(60 * 80)])
    with pytest.raises(ValueError, match="inter_ocular"):
        normaliser(gt, IBUG, "pupils")


def test_nme_two_points_off_by_known_amounts() -> None:
    gt = _face()
    pred = gt.copy()
    pred[0, 5] += (3.0, 4.0)  # 5 px
    pred[0, 60] += (0.0, -6.0)  # 6 px
    expected = (5.0 + 6.0) / 68 / 40.0
    np.testing.assert_allclose(nme(pred, gt, IBUG), [expected], rtol=1e-12)
    np.testing.assert_allclose(nme(pred, gt, IBUG, "box_diagonal"), [(11 / 68) / 100.0], rtol=1e-12)
    np.testing.assert_allclose(nme(gt, gt, IBUG), [0.0])


def test_nme_is_per_image() -> None:
    gt = np.concatenate([_face(), _face() * 2.0])  # second face twice as large: inter-ocular 80
    pred = gt + (0.0, 2.0)  # every point 2 px off
    np.testing.assert_allclose(nme(pred, gt, IBUG), [2 / 40, 2 / 80], rtol=1e-12)


def test_nme_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match=r"\[N, L, 2\]"):
        nme(_face()[0], _face()[0], IBUG)
    with pytest.raises(ValueError):
        nme(_face()[:, :67], _face(), IBUG)


def test_failure_rate_counts_strictly_above_threshold() -> None:
    assert failure_rate(np.array([0.05, 0.1, 0.15, 0.2])) == 0.5
    assert failure_rate(np.array([0.01, 0.02])) == 0.0
    assert math.isnan(failure_rate(np.array([])))


def test_auc_of_known_distributions() -> None:
    assert auc(np.zeros(10)) == pytest.approx(1.0, abs=1e-12)
    # A step at 0.05 covers half of [0, 0.1]; one trapezoid step of the 1001-point grid is 1e-3 of it.
    assert auc(np.full(10, 0.05)) == pytest.approx(0.5, abs=1e-3)
    assert auc(np.full(10, 0.2)) == 0.0
    # Half the images perfect, half failing: the curve sits at 0.5 throughout.
    assert auc(np.array([0.0, 0.0, 0.3, 0.3])) == pytest.approx(0.5, abs=1e-12)


def test_ced_curve_is_monotone_and_ends_at_the_share_below_max() -> None:
    rng = np.random.default_rng(1)
    nmes = rng.uniform(0.0, 0.2, size=200)
    xs, ys = ced_curve(nmes)
    assert xs[0] == 0.0 and xs[-1] == pytest.approx(0.1)
    assert np.all(np.diff(ys) >= 0)
    assert ys[-1] == pytest.approx((nmes <= 0.1).mean())


def test_pearson_sign_and_degenerate_input() -> None:
    x = np.arange(10.0)
    assert pearson(x, 3 * x + 1) == pytest.approx(1.0)
    assert pearson(x, -0.5 * x + np.array([0, 0.1] * 5)) < -0.99
    assert math.isnan(pearson(x, np.ones(10)))
    assert math.isnan(pearson([1.0], [2.0]))


def test_anchor_errors_shape_and_value() -> None:
    gt = np.concatenate([_face(), _face()])  # [2, 68, 2], inter-ocular 40
    anchors = np.repeat(gt[:, None], 3, axis=1)  # [2, 3, 68, 2]
    anchors[0, 1] += (4.0, 0.0)  # every point 4 px off -> 0.1
    anchors[1, 2, 7] += (0.0, 68.0)  # one point 68 px off -> mean 1 px -> 0.025
    err = anchor_errors(anchors, gt, IBUG)
    assert err.shape == (2, 3)
    np.testing.assert_allclose(err, [[0.0, 0.1, 0.0], [0.0, 0.0, 0.025]], atol=1e-12)


def test_signed_errors_see_a_constant_offset_that_nme_cannot_tell_from_noise() -> None:
    from core.offline.metrics import signed_errors

    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 100, size=(4, 68, 2))
    gt[:, 36], gt[:, 45] = (10.0, 50.0), (60.0, 50.0)  # inter-ocular distance 50 px
    gt[1, 3] = np.nan  # a hidden point is left out, not averaged as zero
    shifted = gt + (1.0, -0.5)
    np.testing.assert_allclose(signed_errors(shifted, gt, IBUG68), [[0.02, -0.01]] * 4)
    noisy = gt + rng.choice([-1.0, 1.0], size=gt.shape) * np.hypot(1.0, 0.5) / np.sqrt(2)  # same spread, no offset
    assert np.abs(signed_errors(noisy, gt, IBUG68)).max() < 0.005


def test_eyelid_nme_scores_only_the_eyelid_points() -> None:
    from core.offline.metrics import eyelid_nme

    gt = np.zeros((1, 68, 2))
    gt[0, 36], gt[0, 45] = (0.0, 0.0), (100.0, 0.0)
    pred = gt.copy()
    pred[0, list(IBUG68.eyelids), 1] += 5.0  # eyelids 5 px off, nothing else
    pred[0, 30] += 50.0  # a nose point far off does not count
    np.testing.assert_allclose(eyelid_nme(pred, gt, IBUG68), [0.05])
