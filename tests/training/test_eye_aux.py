"""The auxiliary eye-openness head: its target is the app's eye ratio, hidden eyes are left out, it
trains with the model and is saved for resuming but never exported."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.face_state import aspect_ratio
from core.schemes import get_scheme
from models.anchorface import ModelConfig, build_model
from training import export, train
from training.eye_aux import EyeOpenness, eye_openness_loss, eye_ratios

SCHEME = get_scheme("ibug68")


def face_with_eyes(opening: float) -> torch.Tensor:
    """A [1, 68, 2] shape whose two eyes are 10 px wide and ``opening`` px open, the rest far away."""
    points = np.full((68, 2), 100.0)
    for left, (outer, inner, upper, lower) in zip((0.0, 40.0), SCHEME.eyes):
        points[outer], points[inner] = (left, 0), (left + 10, 0)
        for k, (u, v) in enumerate(zip(upper, lower)):
            x = left + (3 if k == 0 else 7) if outer < inner else left + (7 if k == 0 else 3)
            points[u], points[v] = (x, -opening / 2), (x, opening / 2)
    return torch.as_tensor(points[None], dtype=torch.float32)


def test_eye_ratio_target_is_the_apps_aspect_ratio() -> None:
    shape = face_with_eyes(4.0)
    contours = {c.name: c.indices for c in SCHEME.contours}
    expected = [aspect_ratio(shape[0].numpy(), contours[name]) for name in ("left_eye", "right_eye")]
    np.testing.assert_allclose(eye_ratios(shape, SCHEME)[0].numpy(), expected, atol=1e-6)
    assert eye_ratios(face_with_eyes(0.0), SCHEME).abs().max() < 1e-6


def test_a_hidden_eye_is_left_out_of_the_loss() -> None:
    shape = face_with_eyes(4.0)
    shape[0, SCHEME.eyes[0][2][0]] = float("nan")
    predicted = torch.tensor([[5.0, 0.4]])
    assert float(eye_openness_loss(predicted, shape, SCHEME)) == pytest.approx(0.0, abs=1e-6)
    shape[0, SCHEME.eyes[1][3][0]] = float("nan")
    assert float(eye_openness_loss(predicted, shape, SCHEME)) == 0.0


def test_the_model_hands_out_its_features_only_when_asked() -> None:
    config = ModelConfig.for_input_size(128, width=0.5)
    model = build_model(config, np.zeros((config.num_templates, 68, 2)))
    plain = model(torch.zeros(2, 3, 128, 128))
    landmarks, logits, features = model(torch.zeros(2, 3, 128, 128), with_features=True)
    assert len(plain) == 2 and features.shape == (2, config.head_channels, config.grid, config.grid)
    head = EyeOpenness(config.head_channels, 2)
    # it starts at an open eye's ratio whatever the features: no random answer to push into the backbone
    torch.testing.assert_close(head(torch.randn_like(features)), torch.full((2, 2), EyeOpenness.START_RATIO))


@pytest.mark.slow
def test_training_with_the_eye_head_saves_it_for_resuming_and_exports_without_it(shared_data: Path,
                                                                                   tmp_path: Path) -> None:
    args = ["--data", str(shared_data), "--out", str(tmp_path), "--epochs", "1", "--max-train", "16",
            "--batch-size", "8", "--width", "0.5", "--workers", "0", "--threads", "1", "--input-size", "128",
            "--eye-aux-weight", "1", "--eye-close-prob", "0.5"]
    assert train.main(args) == 0
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    assert set(last["eye_aux"]) == {"linear.weight", "linear.bias"}
    assert train.main([*args[:5], "2", *args[6:], "--resume"]) == 0
    resumed = torch.load(tmp_path / "last.pt", weights_only=True)
    assert not torch.equal(resumed["eye_aux"]["linear.weight"], last["eye_aux"]["linear.weight"])
    export.export(tmp_path / "best.pt", tmp_path / "model.onnx")
    import onnx
    outputs = [o.name for o in onnx.load(str(tmp_path / "model.onnx")).graph.output]
    assert outputs == ["anchor_landmarks", "anchor_confidence"]
