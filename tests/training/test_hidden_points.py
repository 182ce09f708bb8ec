"""Hidden (self-occluded, ``-1 -1``) points through every stage, on one hand-made turned face: the crop
box, augmentation and flip, both losses and the metrics must treat them as missing, never as (-1, -1)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.offline.datasets import read_pts, visible_mask
from core.geometry import crop_from_landmarks, landmark_box, transform_points
from core.offline.metrics import FALLBACK, nme, normalisations, normaliser
from core.schemes import get_scheme
from models.losses import anchorface_loss, confidence_target, direct_loss
from training.augment import AugmentConfig, augment, crop_with_jitter, flip

IBUG = get_scheme("ibug68")
#: The image-left jaw (0-5) and the image-left outer eye corner (36) are hidden, as on a face turned right.
HIDDEN = [0, 1, 2, 3, 4, 5, 36]


def turned_face() -> np.ndarray:
    """68 points on an ellipse in a 200×200 image, with the HIDDEN points written as ``-1 -1``."""
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    pts = np.stack([100 + 40 * np.cos(t), 110 + 50 * np.sin(t)], axis=1)
    pts[HIDDEN] = -1.0
    return pts


@pytest.fixture()
def face(tmp_path: Path) -> np.ndarray:
    """The hand-made face, through the real reader (so it carries NaN where the file says -1 -1)."""
    body = "\n".join(f"{x:.3f} {y:.3f}" for x, y in turned_face())
    (tmp_path / "turned.pts").write_text(f"version: 1\nn_points: 68\n{{\n{body}\n}}\n", encoding="utf-8")
    return read_pts(tmp_path / "turned.pts").astype(np.float64)


def test_reader_marks_exactly_the_hidden_points(face: np.ndarray) -> None:
    assert list(np.flatnonzero(~visible_mask(face))) == HIDDEN


def test_crop_box_uses_visible_points_only(face: np.ndarray) -> None:
    box = landmark_box(face)
    shown = face[visible_mask(face)]
    assert (box.x0, box.y0) == pytest.approx(tuple(shown.min(axis=0)))
    assert box.x0 > 50, "(-1, -1) must not stretch the box to the image corner"
    matrix = crop_from_landmarks(face, 128)
    crop_pts = transform_points(face, matrix)
    assert np.isnan(crop_pts[HIDDEN]).all() and np.isfinite(crop_pts[visible_mask(face)]).all()
    with pytest.raises(ValueError, match="no visible"):
        landmark_box(np.full((68, 2), np.nan))


def test_flip_permutes_the_mask_with_the_points(face: np.ndarray) -> None:
    crop = np.zeros((128, 128, 3), np.uint8)
    _, flipped = flip(crop, face.astype(np.float32), IBUG)
    mirror = list(IBUG.mirror)
    np.testing.assert_array_equal(visible_mask(flipped), visible_mask(face)[mirror])
    assert sorted(np.flatnonzero(~visible_mask(flipped))) == sorted(mirror[i] for i in HIDDEN)  # jaw 11-16, eye 45


def test_augmented_crops_keep_hidden_points_hidden(face: np.ndarray) -> None:
    image = np.full((200, 200, 3), 128, np.uint8)
    for seed in range(20):
        crop, pts = augment(image, face.astype(np.float32), IBUG, np.random.default_rng(seed), AugmentConfig(), 128)
        assert crop.shape == (128, 128, 3)
        assert (~visible_mask(pts)).sum() == len(HIDDEN)
        shown = pts[visible_mask(pts)]
        assert shown.min() > -30 and shown.max() < 158, "the box of visible points stays framed"
    _, plain = crop_with_jitter(image, face, None, AugmentConfig(), 128)
    box = landmark_box(face)
    half_pixel = 0.5 * 128 / round(1.5 * box.size)  # the policy crop is snapped to whole image pixels
    centre = (landmark_box(plain).center)
    assert centre == pytest.approx((63.5, 63.5), abs=half_pixel + 1e-4), "the plain crop centres the visible points"


def test_losses_ignore_hidden_points(face: np.ndarray) -> None:
    full = torch.as_tensor(np.nan_to_num(face, nan=0.0), dtype=torch.float32)
    target = torch.as_tensor(face, dtype=torch.float32)[None]
    placed = torch.stack([full, full + 4.0])
    pred = placed[None].clone().requires_grad_(True)
    # Any value at a hidden index is invisible to the loss: move the hidden predictions far away.
    moved = pred.detach().clone()
    moved[0, :, HIDDEN] += 500.0
    logits = torch.zeros(1, 2)
    a = anchorface_loss(pred, logits, placed, target)
    b = anchorface_loss(moved, logits, placed, target)
    assert torch.isfinite(a.total) and float(a.total.detach()) == pytest.approx(float(b.total), abs=1e-6)
    a.total.backward()
    assert torch.isfinite(pred.grad).all() and (pred.grad[0, :, HIDDEN] == 0).all()
    # The confidence target is the same RMS-error scale with or without the hidden points.
    c_hidden = confidence_target(placed, target)
    c_full = confidence_target(placed, full[None])
    torch.testing.assert_close(c_hidden, c_full, atol=1e-5, rtol=0)
    assert float(direct_loss(pred[:, :1], target).regression) == pytest.approx(0.0, abs=1e-7)


def test_metrics_use_visible_points_and_fall_back_without_an_eye_corner(face: np.ndarray) -> None:
    gt = face[None]
    pred = np.nan_to_num(gt, nan=0.0) + [3.0, 4.0]  # every visible point 5 px off
    assert normalisations(gt, IBUG)[0] == FALLBACK, "point 36 is hidden: no inter-ocular distance"
    box = landmark_box(face)
    assert normaliser(gt, IBUG)[0] == pytest.approx(np.hypot(box.width, box.height))
    assert nme(pred, gt, IBUG)[0] == pytest.approx(5.0 / np.hypot(box.width, box.height))
    frontal = np.nan_to_num(gt, nan=50.0)
    assert normalisations(frontal, IBUG)[0] == "inter_ocular"
