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


@pytest.mark.slow
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
