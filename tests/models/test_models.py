"""The torch side: shapes for both models and schemes, the loss's decisions, and a tiny overfit on real faces."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.anchors import AnchorConfig, anchor_points, place_templates
from core.offline.datasets import read_dataset, select_split
from core.schemes import get_scheme
from models.anchorface import AnchorFace, ExportWrapper, ModelConfig, build_model
from models.complexity import count_macs, count_parameters
from models.losses import LossConfig, anchorface_loss, confidence_target, wing
from training.data import FaceDataset

torch.set_num_threads(1)


def prior_for(config: ModelConfig) -> np.ndarray:
    rng = np.random.default_rng(0)
    shape = (config.num_templates, config.num_points, 2) if config.model_type == "anchorface" else (config.num_points, 2)
    return rng.normal(0, 30, size=shape)


@pytest.mark.parametrize("scheme", ["ibug68", "wflw98"])
@pytest.mark.parametrize("model_type", ["anchorface", "direct"])
def test_forward_shapes(scheme: str, model_type: str) -> None:
    points = get_scheme(scheme).num_points
    config = ModelConfig(model_type=model_type, scheme=scheme, num_points=points, width=0.5)
    model = build_model(config, prior_for(config)).eval()
    landmarks, confidence = ExportWrapper(model)(torch.rand(2, 3, 224, 224))
    m = 7 * 7 * 24 if model_type == "anchorface" else 1
    assert landmarks.shape == (2, m, points, 2) and confidence.shape == (2, m)
    assert torch.all((confidence > 0) & (confidence <= 1))
    if model_type == "direct":
        assert torch.allclose(confidence, torch.ones_like(confidence))


def test_untrained_anchorface_predicts_its_placed_templates() -> None:
    """Offsets start near zero, so anchor (row, col, t) sits at T(a, t): the index layout is what core documents."""
    config = ModelConfig(width=0.5)
    templates = prior_for(config)
    model = AnchorFace(config, templates).eval()
    landmarks, _ = model(torch.rand(1, 3, 224, 224))
    placed = place_templates(templates, anchor_points())
    assert np.abs(landmarks[0].detach().numpy() - placed).max() < 2.0
    # anchor m = cell * K + t: cell 8 is row 1, col 1 → centre (95.5, 95.5) for template 0
    assert np.allclose(placed[8 * 24].mean(axis=0) - templates[0].mean(axis=0), [95.5, 95.5])


def test_parameter_and_mac_counts_are_in_the_papers_range() -> None:
    config = ModelConfig()
    model = build_model(config, prior_for(config))
    macs = count_macs(model)
    assert 150e6 < macs < 260e6, macs  # paper: 227 M FLOPs for ShuffleNetV2 ×1.0 + heads
    assert 1.5e6 < count_parameters(model) < 4e6


def test_confidence_target_decreases_with_distance_and_spans_the_threshold() -> None:
    truth = torch.zeros(1, 68, 2)
    templates = torch.stack([truth[0] + d for d in (0.0, 5.0, 20.0, 80.0)])
    target = confidence_target(templates, truth)[0]
    assert target[0] == pytest.approx(1.0)
    assert torch.all(target[1:] < target[:-1]), "closer templates get higher confidence (the '1 −' decision)"
    assert target[1] > 0.6 > target[3], "the 0.6 threshold separates a near template from a far one"


def test_regression_is_weighted_by_the_target_confidence() -> None:
    """Moving a far anchor's prediction changes the loss far less than moving a near one's."""
    truth = torch.zeros(1, 68, 2)
    placed = torch.stack([truth[0], truth[0] + 100.0])
    logits = torch.zeros(1, 2)
    base = anchorface_loss(placed[None].clone(), logits, placed, truth).regression
    near = placed[None].clone()
    near[0, 0] += 5
    far = placed[None].clone()
    far[0, 1] += 5
    assert anchorface_loss(near, logits, placed, truth).regression - base > \
        10 * (anchorface_loss(far, logits, placed, truth).regression - base)


def test_regression_power_shifts_the_weight_to_near_anchors() -> None:
    """With C̄^p (p > 1) an error on the far anchor counts less than with the plain C̄ weight."""
    truth = torch.zeros(1, 68, 2)
    placed = torch.stack([truth[0], truth[0] + 30.0])
    logits = torch.zeros(1, 2)
    far_off = placed[None].clone()
    far_off[0, 1] += 5

    def regression(power: float) -> float:
        return float(anchorface_loss(far_off, logits, placed, truth, LossConfig(regression_power=power)).regression)
    assert 0 < regression(4.0) < 0.5 * regression(1.0)


def test_wing_is_continuous_steep_near_zero_and_l1_beyond_its_width() -> None:
    errors = torch.tensor([0.0, 0.01, 4.999999, 5.0, 5.5, 30.0], dtype=torch.float64)
    values = wing(errors, 5.0, 1.0)
    assert float(values[0]) == 0.0 and float(values[1]) == pytest.approx(5 * np.log1p(0.01))  # slope w/ε = 5
    assert float(values[3] - values[2]) == pytest.approx(0.0, abs=1e-5)  # continuous at w
    assert float(values[5] - values[4]) == pytest.approx(24.5)  # slope 1 beyond w, as L1
    with pytest.raises(ValueError, match="positive"):
        wing(errors, 5.0, 0.0)


def test_wing_regression_pulls_small_errors_harder_than_l1() -> None:
    """A 0.5 px error on the near anchor adds 5·ln(1.5) / 0.5 ≈ 4 times as much with Wing (w 5, ε 1) as
    with L1; with width 0 the loss is the plain L1 one."""
    truth = torch.zeros(1, 68, 2)
    placed = torch.stack([truth[0], truth[0] + 100.0])
    logits = torch.zeros(1, 2)
    off = placed[None].clone()
    off[0, 0] += 0.5

    def added(**options: float) -> float:
        def regression(pred: torch.Tensor) -> float:
            return float(anchorface_loss(pred, logits, placed, truth, LossConfig(**options)).regression)
        return regression(off) - regression(placed[None].clone())
    assert added(wing_width=0.0) == pytest.approx(added())
    assert added(wing_width=5.0, wing_curvature=1.0) == pytest.approx(added() * 5 * np.log1p(0.5) / 0.5, rel=1e-4)


def test_eyelid_emphasis_weights_only_the_emphasised_points_and_keeps_the_scale() -> None:
    """An error on the eyelids alone grows with the emphasis; an equal error on every point does not
    (the weights are normalised per face), and a hidden eyelid point carries no weight."""
    from core.schemes import get_scheme

    lids = get_scheme("ibug68").eyelids
    truth = torch.zeros(1, 68, 2)
    placed, logits = truth.clone(), torch.zeros(1, 1)

    def regression(error_on: list[int], emphasis: float, target: torch.Tensor = truth) -> float:
        pred = placed[None].clone()
        pred[0, 0, error_on] += 4.0
        config = LossConfig(emphasised_points=lids, emphasis=emphasis)
        return float(anchorface_loss(pred, logits, placed, target, config).regression)
    assert regression(list(lids), 3.0) == pytest.approx(regression(list(lids), 1.0) * 3 * 68 / (60 + 24))
    assert regression(list(range(68)), 3.0) == pytest.approx(regression(list(range(68)), 1.0))
    hidden = truth.clone()
    hidden[0, list(lids)] = float("nan")
    assert regression(list(lids), 3.0, hidden) == 0.0


@pytest.mark.slow
def test_loss_decreases_when_overfitting_a_few_real_faces(shared_data) -> None:
    records = [r for r in select_split(read_dataset(shared_data), "train") if r.scheme == "ibug68"][:4]
    # 128 px keeps the paper's geometry (fractions of the crop) at a third of 224's cost.
    dataset = FaceDataset(records, train=False, input_size=128)
    images = torch.stack([dataset[i][0] for i in range(4)])
    targets = torch.stack([dataset[i][1] for i in range(4)])
    from core.anchors import build_templates

    config = ModelConfig.for_input_size(128, width=0.5)
    templates = build_templates(np.concatenate([dataset.policy_shapes()] * 2), get_scheme("ibug68"),
                                AnchorConfig(input_size=128, grid=config.grid, area=config.anchor_area))
    torch.manual_seed(0)
    model = AnchorFace(config, templates)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(25):
        landmarks, logits = model(images)
        terms = anchorface_loss(landmarks, logits, model.placed_templates, targets, LossConfig.for_input_size(128))
        optimizer.zero_grad()
        terms.total.backward()
        optimizer.step()
        losses.append(terms.total.item())
    assert losses[-1] < 0.6 * losses[0], losses
