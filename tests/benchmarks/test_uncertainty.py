"""The uncertainty benchmark (benchmarks/uncertainty.py): its statistics on made-up anchors whose answer
is known, and the real CLI on a few validation faces through the shipped ONNX model."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks import uncertainty
from benchmarks.uncertainty import Anchors, correlate, deciles
from core.runtime import DEFAULT_MODEL_PATH
from core.schemes import get_scheme


def spread_anchors(noise_per_point: np.ndarray, faces: int = 12, anchors: int = 16, seed: int = 0) -> Anchors:
    """Anchors scattered around the truth with a per-point spread: points whose anchors disagree more
    also end up further off (their mean carries the scatter), as the benchmark hopes real ones do."""
    rng = np.random.default_rng(seed)
    truth = np.tile(rng.uniform(60, 160, (1, 68, 2)), (faces, 1, 1))
    left, right = get_scheme("ibug68").outer_eye_corners
    truth[:, left], truth[:, right] = [70.0, 100.0], [150.0, 100.0]  # a fixed 80 px inter-ocular distance
    scatter = rng.normal(size=(faces, anchors, 68, 2)) * noise_per_point[None, None, :, None]
    return Anchors((truth[:, None] + scatter).astype(np.float32), np.full((faces, anchors), 0.9, np.float32),
                   truth)


def test_spread_that_drives_the_error_correlates_strongly() -> None:
    result = correlate(spread_anchors(np.linspace(0.2, 8.0, 68)), "ibug68", "weighted")
    assert result.pooled > 0.5 and result.per_face > 0.5


def test_spread_unrelated_to_the_error_does_not_correlate() -> None:
    anchors = spread_anchors(np.full(68, 3.0))
    rng = np.random.default_rng(1)  # every face's error comes from somewhere the anchors do not show
    anchors.truth = anchors.truth + rng.normal(0, 5.0, anchors.truth.shape)
    result = correlate(anchors, "ibug68", "weighted")
    assert abs(result.pooled) < 0.15


@pytest.mark.filterwarnings("ignore:An input array is constant")
def test_uncertainty_and_error_are_percent_of_the_inter_ocular_distance() -> None:
    anchors = spread_anchors(np.full(68, 0.0))  # every anchor on the truth: no spread, no error
    anchors.landmarks[:, 0, 5] += [8.0, 0.0]  # one anchor of 16 off by 8 px (10 % IOD) at point 5
    result = correlate(anchors, "ibug68", "weighted")
    # mean moves by 0.5 px (0.625 %); RMS spread sqrt((7.5² + 15·0.5²) / 16) = 1.936 px = 2.42 % IOD
    assert result.error[0, 5] == pytest.approx(0.625, rel=1e-4)
    assert result.uncertainty[0, 5] == pytest.approx(100 * np.sqrt((7.5 ** 2 + 15 * 0.25) / 16) / 80, rel=1e-4)


def test_deciles_split_the_points_into_ten_equal_ranked_groups() -> None:
    u = np.arange(100, dtype=float).reshape(10, 10)
    bins = deciles(u, 2 * u)
    assert [b[0] for b in bins] == pytest.approx([4.5 + 10 * d for d in range(10)])
    assert [b[1] for b in bins] == pytest.approx([9.0 + 20 * d for d in range(10)])


def test_cli_on_a_few_real_validation_faces(shared_data: Path, tmp_path: Path) -> None:
    if not DEFAULT_MODEL_PATH.is_file():
        pytest.skip("the bundled model is absent")
    results, plot = tmp_path / "RESULTS.md", tmp_path / "deciles.png"
    assert uncertainty.main(["--data", str(shared_data), "--limit", "12", "--results", str(results),
                             "--plot", str(plot)]) == 0
    text = results.read_text()
    assert "## Uncertainty vs error" in text and "Spearman pooled" in text and "target pooled Spearman" in text
    assert plot.stat().st_size > 10_000


# --- the overlay layer (core.draw) ------------------------------------------------------------------

def drawn_colours(uncertainty: np.ndarray | None, on: bool) -> tuple[np.ndarray, np.ndarray]:
    """Draw only the points of a face with ``uncertainty`` on black; the pixel at each point."""
    import dataclasses

    from core.draw import DrawOptions, draw_faces
    from core.geometry import landmark_box
    from core.results import FaceResult

    points = np.stack(np.meshgrid(np.linspace(100, 500, 17), np.linspace(60, 300, 4)), -1).reshape(-1, 2)[:68]
    face = FaceResult(1, points.astype(np.float32), 0.9, landmark_box(points), None, "ibug68", uncertainty)
    layers = {f.name: False for f in dataclasses.fields(DrawOptions)}
    canvas = draw_faces(np.zeros((360, 640, 3), np.uint8), [face], "ibug68",
                        DrawOptions(**{**layers, "points": True, "uncertainty": on}))
    xs, ys = np.round(points).astype(int).T
    return canvas[ys, xs].astype(int), canvas


def test_uncertainty_layer_colours_sure_points_green_and_unsure_ones_red() -> None:
    spread = np.where(np.arange(68) < 34, 0.5, 40.0).astype(np.float32)  # face size 400 px: 0.1 % and 10 %
    colours, canvas = drawn_colours(spread, on=True)
    sure, unsure = colours[:34], colours[34:]
    assert (sure[:, 1] > 150).all() and (sure[:, 2] < 60).all()  # green
    assert (unsure[:, 2] > 200).all() and (unsure[:, 1] < 60).all()  # red
    plain, plain_canvas = drawn_colours(spread, on=False)
    assert (plain == plain[0]).all()  # off: the track colour everywhere
    assert (canvas.any(axis=2).sum()) > (plain_canvas.any(axis=2).sum())  # unsure points drawn larger


def test_uncertainty_layer_without_uncertainty_draws_plain_points() -> None:
    with_layer, _ = drawn_colours(None, on=True)
    without, _ = drawn_colours(None, on=False)
    np.testing.assert_array_equal(with_layer, without)


# --- the Kalman filter's per-point measurement noise (core.smoothing, KalmanConfig.point_noise) --------

FACE = np.stack(np.meshgrid(np.linspace(100, 300, 17), np.linspace(100, 300, 4)), -1).reshape(-1, 2)[:68]
OCCLUDED = slice(0, 10)  # points that turn doubtful and noisy in frames 60-89 (a hand over them)


def occlusion_error(point_noise: float, report_uncertainty: bool) -> np.ndarray:
    """Per-point RMS error of the filtered output over frames 60-89 of a still face whose first ten points
    get 6x the measurement noise there, with the anchor spread saying so (when reported)."""
    from core.smoothing import KalmanConfig, KalmanSmoother

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
    from core.smoothing import KalmanConfig, KalmanSmoother

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
    from core.smoothing import KalmanConfig, KalmanSmoother

    with pytest.raises(ValueError, match="uncertainty must be"):
        KalmanSmoother(KalmanConfig(point_noise=1.0)).update(np.zeros((68, 2)) + np.arange(68)[:, None], 0.9, 0.0,
                                                             np.ones(5))
