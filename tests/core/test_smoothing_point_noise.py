"""The Kalman filter's per-point measurement noise (core.smoothing, ``KalmanConfig.point_noise``): points
whose anchors disagree (a hand over them) are held, a zero exponent ignores the uncertainty, a wrong
length is refused. Simulated faces, so the answer is known."""
from __future__ import annotations

import numpy as np
import pytest

from core.smoothing import KalmanConfig, KalmanSmoother


FACE = np.stack(np.meshgrid(np.linspace(100, 300, 17), np.linspace(100, 300, 4)), -1).reshape(-1, 2)[:68]


OCCLUDED = slice(0, 10)  # points that turn doubtful and noisy in frames 60-89 (a hand over them)


def occlusion_error(point_noise: float, report_uncertainty: bool) -> np.ndarray:
    """Per-point RMS error of the filtered output over frames 60-89 of a still face whose first ten points
    get 6x the measurement noise there, with the anchor spread saying so (when reported)."""
    rng = np.random.default_rng(3)
    smoother = KalmanSmoother(KalmanConfig(point_noise=point_noise))
    errors = []
    for k in range(90):
        sigma, spread = np.ones(68), np.full(68, 2.0)
        if k >= 60:
            sigma[OCCLUDED], spread[OCCLUDED] = 6.0, 12.0
        out = smoother.update(FACE + rng.normal(0, 1.0, FACE.shape) * sigma[:, None], 0.9, k / 30,
                              spread if report_uncertainty else None)
        if k >= 60:
            errors.append(np.linalg.norm(out - FACE, axis=1))
    return np.sqrt(np.mean(np.square(errors), axis=0))


def still_face_jitter(point_noise: float, uncertainty: np.ndarray | None, frames: int = 60) -> np.ndarray:
    rng = np.random.default_rng(4)
    smoother = KalmanSmoother(KalmanConfig(point_noise=point_noise))
    out = np.stack([smoother.update(FACE + rng.normal(0, 1.0, FACE.shape), 0.9, k / 30, uncertainty)
                    for k in range(frames)])
    return np.sqrt(((out - out.mean(axis=0)) ** 2).sum(axis=2).mean(axis=0))


def test_per_point_noise_holds_points_that_turn_doubtful() -> None:
    per_face = occlusion_error(1.0, report_uncertainty=False)
    per_point = occlusion_error(1.0, report_uncertainty=True)
    assert per_point[OCCLUDED].mean() < 0.5 * per_face[OCCLUDED].mean()
    # The others no worse: with per-face noise the noisy points also pass for motion and unsteady them.
    assert per_point[10:].mean() <= 1.05 * per_face[10:].mean()


def test_point_noise_zero_ignores_the_uncertainty() -> None:
    spread = np.linspace(0.5, 8.0, 68)
    np.testing.assert_array_equal(still_face_jitter(0.0, spread), still_face_jitter(0.0, None))


def test_per_point_noise_rejects_an_uncertainty_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="uncertainty must be"):
        KalmanSmoother(KalmanConfig(point_noise=1.0)).update(np.zeros((68, 2)) + np.arange(68)[:, None], 0.9, 0.0,
                                                             np.ones(5))
