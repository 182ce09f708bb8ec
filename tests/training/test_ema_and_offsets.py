"""The weights' moving average and the per-source label offsets, on known numbers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.offline.datasets import FaceRecord
from core.schemes import IBUG68
from training.augment import flip
from training.ema import WeightAverage
from training.label_offsets import apply_offsets, inter_ocular_scale, load_offsets, measure_offsets


def test_moving_average_follows_the_formula_and_copies_integer_buffers() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.BatchNorm1d(1))
    average = WeightAverage(model, decay=0.5)
    start = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model[1].num_batches_tracked.fill_(7)
    average.update(model)  # effective decay min(0.5, 2/11) = 2/11
    np.testing.assert_allclose(average.shadow[0].weight.numpy(), (start + 9 / 11).numpy(), rtol=1e-6)
    assert int(average.shadow[1].num_batches_tracked) == 7
    again = WeightAverage(model, decay=0.5)
    again.load_state_dict(average.state_dict())
    assert again.updates == 1 and torch.equal(again.shadow[0].weight, average.shadow[0].weight)
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(model, decay=1.0)


def _face(source: str, iod: float, hide_corner: bool = False) -> FaceRecord:
    pts = np.zeros((68, 2), np.float32)
    pts[:, 0] = np.linspace(0, iod, 68)
    pts[:, 1] = np.linspace(0, iod * 0.8, 68)
    pts[36], pts[45] = (0.0, 10.0), (iod, 10.0)
    if hide_corner:
        pts[45] = np.nan
    return FaceRecord(Path(f"{source}.jpg"), pts, "ibug68", source)


def test_offsets_move_a_source_by_a_fraction_of_each_face_s_eye_distance() -> None:
    records = [_face("merl", 50.0), _face("merl", 100.0), _face("300w_afw", 80.0)]
    moved = apply_offsets(records, {"merl": (0.02, -0.01)})
    np.testing.assert_allclose(moved[0].landmarks - records[0].landmarks, np.tile([1.0, -0.5], (68, 1)), atol=1e-5)
    np.testing.assert_allclose(moved[1].landmarks - records[1].landmarks, np.tile([2.0, -1.0], (68, 1)), atol=1e-5)
    assert moved[2] is records[2]  # a reference source is never moved


def test_a_face_without_eye_distance_is_scaled_by_its_source_s_ratio_and_keeps_hidden_points() -> None:
    whole, half = _face("merl", 60.0), _face("merl", 60.0, hide_corner=True)
    scale = inter_ocular_scale([whole, half])
    assert scale[0] == pytest.approx(60.0) and scale[1] == pytest.approx(60.0, rel=0.05)
    moved = apply_offsets([whole, half], {"merl": (0.1, 0.0)})
    assert np.isnan(moved[1].landmarks[45]).all()


def test_an_offset_applied_before_the_flip_is_mirrored_by_it() -> None:
    """Offsets live in source coordinates: flipping the corrected face equals correcting, then mirroring —
    so flipped and unflipped copies of one face agree, and the model can stay mirror-consistent."""
    record = _face("merl", 40.0)
    crop = np.zeros((64, 64, 3), np.uint8)
    (moved,) = apply_offsets([record], {"merl": (0.05, 0.0)})
    _, flipped_plain = flip(crop, record.landmarks, IBUG68)
    _, flipped_moved = flip(crop, moved.landmarks, IBUG68)
    np.testing.assert_allclose(flipped_moved - flipped_plain, np.tile([-2.0, 0.0], (68, 1)), atol=1e-5)


def test_measured_offsets_are_relative_to_the_face_weighted_reference() -> None:
    bias = {"300w_afw": (0.01, 0.02, 100), "300w_helen_train": (0.03, 0.0, 300),
            "merl_rav_aflw": (0.05, 0.01, 200), "300wlp_mmpose": (0.4, 0.4, 2)}
    found = measure_offsets(bias, ["merl_rav_aflw", "300wlp_mmpose"], ("300w_afw", "300w_helen_train"))
    assert set(found) == {"merl_rav_aflw"}  # two faces are too few to measure
    assert found["merl_rav_aflw"]["dx"] == pytest.approx(0.05 - 0.025)
    assert found["merl_rav_aflw"]["dy"] == pytest.approx(0.01 - 0.005)


def test_offsets_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "offsets.json"
    path.write_text('{"offsets": {"merl_rav_aflw": {"dx": -0.03, "dy": 0.004, "faces": 900}}}', encoding="utf-8")
    assert load_offsets(path) == {"merl_rav_aflw": (-0.03, 0.004)}
