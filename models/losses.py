"""AnchorFace's losses, with the decisions the paper leaves open made explicit.

* Confidence target: C̄ = 1 − tanh(d / (β·2L)), β = 0.05, where d is the L2 distance between the
  flattened template and ground-truth shapes in units of the anchor-area side (56 px by default).
  The paper's formula without the "1 −" grows with distance, contradicting its own text. The unit
  is chosen so that C̄ = 0.6 (the aggregation threshold) falls at about 20 px RMS point error in a
  224 crop: anchors whose template is already roughly right get trained as confident.
* Regression: L1 between predicted and true offsets (as fractions of the crop), weighted per anchor
  by the TARGET confidence raised to a power, C̄^p, and normalised by ΣC̄^p. Weighting by the predicted
  confidence would let the network shrink the loss by lowering every confidence; the target weight
  is a constant and needs no detaching. The power exists because C̄ is flat: measured on the shared
  data, the ~26 anchors per face above the aggregation threshold (C̄ > 0.6, the only ones decoding
  averages) carry just 12 % of ΣC̄ — the other ~1150 anchors would take 88 % of the regression
  effort; with p = 4 they carry 52 % (p = 8: 83 %). Measured, it does not matter: a 40-epoch stage
  from the same checkpoint reached val NME 6.12 % with p = 1 and 6.10 % with p = 4, and the rest of
  the curves overlap — the offsets of far anchors are learned nearly for free by the shared head. The
  default stays p = 1, the paper's plain C̄ weight; ``--reg-power`` keeps the choice open.
* Emphasised points: the regression may weight some points more (``emphasis`` on ``emphasised_points``;
  training passes the eyelids). Why: a blink moves 8 of 68 points by a few pixels, so with equal weights
  closing an eye is about 2 % of the regression's signal even when a fifth of the samples have their eyes
  closed by augmentation; v5 trained that way still predicted open lids on shut eyes (eye ratio 0.283 vs
  0.285 open, target 0.026). The weighted mean keeps the loss's scale: weights are normalised per face.
* Wing (optional, ``wing_width`` w > 0; Feng et al., CVPR 2018): each coordinate's error e (crop px)
  counts w·ln(1 + e/ε) below w and linearly above, so its pull near zero is w/ε times L1's. Why: the
  shape decoding returns is the average of the confident anchors, whose errors are the last pixel or
  two, where L1's constant pull is weakest against the far anchors' large errors. 0 keeps plain L1.
* Confidence: binary cross-entropy (on logits, for stability) between C and C̄; L = L_reg + λ·L_con.
* Hidden points (NaN in the target, MERL-RAV's self-occluded far side) have no position: the
  regression averages over visible points only, and the confidence distance d is the visible points'
  distance scaled by sqrt(L / L_visible), so C̄ means the same RMS point error whatever is hidden.
* Units follow the input size: ``distance_unit`` is the anchor-area side and ``offset_unit`` the crop
  side (:meth:`LossConfig.for_input_size`), so one set of β and λ serves every size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.anchors import anchor_area
from core.geometry import INPUT_SIZE


@dataclass(frozen=True)
class LossConfig:
    beta: float = 0.05
    lam: float = 0.5
    distance_unit: float = anchor_area(INPUT_SIZE)  # px; the anchor-area side
    offset_unit: float = float(INPUT_SIZE)  # px; L1 on offsets as fractions of the crop
    regression_power: float = 1.0  # p in the C̄^p regression weight (see the module docstring)
    emphasised_points: tuple[int, ...] = ()  # points whose regression error counts ``emphasis`` times
    emphasis: float = 1.0
    wing_width: float = 0.0  # w of the Wing loss in crop px; 0: plain L1 (see the module docstring)
    wing_curvature: float = 1.0  # ε of the Wing loss in crop px

    @classmethod
    def for_input_size(cls, input_size: int, **kwargs: object) -> "LossConfig":
        """Units derived from the crop side (the anchor area is a quarter of it, as in core.anchors)."""
        return cls(distance_unit=anchor_area(input_size), offset_unit=float(input_size), **kwargs)


def split_visible(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(target with hidden points zeroed, [N, L] float mask)`` from a target with NaN hidden points.

    Zeroing (not just masking the product) matters: NaN · 0 is NaN, in the loss and in its gradient.
    """
    mask = torch.isfinite(target).all(dim=-1)
    return torch.where(mask[..., None], target, torch.zeros_like(target)), mask.to(target.dtype)


def confidence_target(templates: torch.Tensor, target: torch.Tensor, config: LossConfig = LossConfig()) -> torch.Tensor:
    """``[N, M]`` targets from placed templates ``[M, L, 2]`` and ground truth ``[N, L, 2]`` (crop px;
    NaN marks a hidden point, left out of the distance)."""
    target, mask = split_visible(target)
    num_points = target.shape[1]
    num_coords = num_points * 2
    sq = ((templates[None] - target[:, None]) ** 2).sum(dim=3) * mask[:, None]  # [N, M, L]
    rescale = (num_points / mask.sum(dim=1).clamp_min(1.0))[:, None]
    d = torch.sqrt(sq.sum(dim=2) * rescale) / config.distance_unit
    return 1.0 - torch.tanh(d / (config.beta * num_coords))


def point_weights(mask: torch.Tensor, config: LossConfig) -> torch.Tensor:
    """``[N, L]`` per-point regression weights: the visibility mask, times ``emphasis`` on the emphasised
    points, normalised so each face's visible weights sum to one half (x and y are summed per point)."""
    weights = mask.clone()
    if config.emphasised_points and config.emphasis != 1.0:
        weights[:, list(config.emphasised_points)] *= config.emphasis
    return weights / (2 * weights.sum(dim=1, keepdim=True).clamp_min(1e-6))


def wing(error: torch.Tensor, width: float, curvature: float) -> torch.Tensor:
    """Wing loss of absolute errors (px): ``w·ln(1 + e/ε)`` below ``w``, ``e − C`` above, with C making it
    continuous at ``w`` (slope w/ε at zero, 1 from ``w`` on, as L1)."""
    if width <= 0 or curvature <= 0:
        raise ValueError(f"wing width and curvature must be positive, got {width}, {curvature}")
    offset = width - width * math.log1p(width / curvature)
    return torch.where(error < width, width * torch.log1p(error / curvature), error - offset)


@dataclass
class LossTerms:
    total: torch.Tensor
    regression: torch.Tensor
    confidence: torch.Tensor


def anchorface_loss(anchor_landmarks: torch.Tensor, logits: torch.Tensor, placed_templates: torch.Tensor,
                    target: torch.Tensor, config: LossConfig = LossConfig()) -> LossTerms:
    """The total loss for a batch: predictions ``[N, M, L, 2]``, logits ``[N, M]``, truth ``[N, L, 2]``."""
    with torch.no_grad():
        c_bar = confidence_target(placed_templates, target, config)
    target, mask = split_visible(target)
    error = (anchor_landmarks - target[:, None]).abs()  # [N, M, L, 2] crop px
    if config.wing_width > 0:
        error = wing(error, config.wing_width, config.wing_curvature)
    per_point = error.sum(dim=3)  # [N, M, L]
    l1 = (per_point * point_weights(mask, config)[:, None]).sum(dim=2) / config.offset_unit
    weight = c_bar ** config.regression_power
    regression = (weight * l1).sum() / weight.sum().clamp_min(1e-6)
    confidence = F.binary_cross_entropy_with_logits(logits, c_bar)
    return LossTerms(regression + config.lam * confidence, regression, confidence)


def direct_loss(anchor_landmarks: torch.Tensor, target: torch.Tensor, config: LossConfig = LossConfig()) -> LossTerms:
    """L1 on visible coordinates as fractions of the crop (the baseline; its single anchor has confidence 1)."""
    target, mask = split_visible(target)
    per_point = (anchor_landmarks[:, 0] - target).abs().sum(dim=2) * mask
    regression = per_point.sum() / (2 * mask.sum().clamp_min(1.0)) / config.offset_unit
    zero = regression.new_zeros(())
    return LossTerms(regression, regression, zero)
