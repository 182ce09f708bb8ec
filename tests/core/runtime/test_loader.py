"""core.runtime.loader: a conforming model loads with its metadata and runs crops in the input convention
(BGR uint8 in, RGB float graph), on tiny generated graphs and on the shipped model."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.anchors import anchor_area, anchor_grid
from core.decode import aggregate
from core.geometry import INPUT_SIZES
from core.runtime import LandmarkModel
from tests.helpers_onnx import expected_outputs, random_crops


def test_conforming_model_loads_with_its_metadata(model: LandmarkModel, model_path: Path) -> None:
    info = model.info
    assert info.path == model_path
    assert (info.name, info.model_type, info.scheme, info.format_version) == ("tiny-test-model", "anchorface",
                                                                              "ibug68", "1")
    assert (info.input_size, info.num_templates, info.grid, info.num_anchors, info.num_points) == (224, 2, 2, 8, 68)
    assert info.crop_margin == 1.5 and info.anchor_area == 56.0 and info.val_nme == pytest.approx(0.048)
    assert model.scheme.num_points == 68 and model.input_size == 224
    assert model.provider == "CPU"


def test_batch_of_three_crops_gives_the_graph_values_in_rgb_order(model: LandmarkModel) -> None:
    crops = random_crops(3)
    crops[1] = 0
    crops[1, ..., 0] = 255  # pure blue in BGR: only the heaviest RGB weight (B) may see it
    landmarks, confidence = model.run(crops)
    assert landmarks.shape == (3, 8, 68, 2) and confidence.shape == (3, 8)
    assert landmarks.dtype == np.float32 and confidence.dtype == np.float32
    rgb = crops[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    want_landmarks, want_confidence = expected_outputs(rgb, 8, 68)
    np.testing.assert_allclose(landmarks, want_landmarks, atol=1e-3)
    np.testing.assert_allclose(confidence, want_confidence, atol=1e-5)
    assert not np.allclose(landmarks[0], landmarks[1])  # outputs depend on each face's own crop


def test_preprocess_is_bgr_to_rgb_scaled_nchw(model: LandmarkModel) -> None:
    crops = random_crops(2, seed=1)
    batch = model.preprocess(crops)
    assert batch.shape == (2, 3, 224, 224) and batch.dtype == np.float32 and batch.flags.c_contiguous
    np.testing.assert_allclose(batch[1, 0], crops[1, ..., 2] / 255.0, rtol=1e-6)  # R from BGR's last channel
    np.testing.assert_allclose(batch[0, 2], crops[0, ..., 0] / 255.0, rtol=1e-6)


def test_predict_aggregates_the_run(model: LandmarkModel) -> None:
    crops = random_crops(2, seed=2)
    result = model.predict(crops, strategy="argmax")
    want = aggregate(*model.run(crops), strategy="argmax")
    assert result.landmarks.shape == (2, 68, 2) and result.confidence.shape == (2,)
    np.testing.assert_array_equal(result.landmarks, want.landmarks)


def test_empty_batch_returns_empty_outputs(model: LandmarkModel) -> None:
    landmarks, confidence = model.run(np.zeros((0, 224, 224, 3), np.uint8))
    assert landmarks.shape == (0, 8, 68, 2) and confidence.shape == (0, 8)


@pytest.mark.parametrize("crops", [np.zeros((1, 224, 224, 3), np.float32), np.zeros((1, 112, 112, 3), np.uint8),
                                   np.zeros((224, 224, 3), np.uint8)])
def test_wrong_crops_are_rejected(model: LandmarkModel, crops: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"crops must be uint8 BGR \[N, 224, 224, 3\]"):
        model.run(crops)


def test_shipped_model_follows_the_contract(bundled_model: LandmarkModel) -> None:
    shipped = bundled_model
    info = shipped.info
    assert info.scheme == "ibug68" and info.input_size in INPUT_SIZES
    assert info.grid == anchor_grid(info.input_size) and info.anchor_area == anchor_area(info.input_size)
    assert info.num_anchors == info.grid ** 2 * info.num_templates
    landmarks, confidence = shipped.run(random_crops(2, size=info.input_size))
    assert landmarks.shape == (2, shipped.info.num_anchors, 68, 2)
    assert np.all((confidence > 0) & (confidence < 1)) or shipped.info.model_type == "direct"
