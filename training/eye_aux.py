"""An auxiliary training head that makes the backbone see whether the eyes are open.

Why: v5's bottleneck features hardly tell an open eye from a shut one. A linear probe on them (pooled, or
all 5×5 cells) separated 240 validation faces from the same faces with their eyes closed by
augmentation at 57 % and 64 % held-out accuracy, where chance is 50 %: the network had learned to ignore
the lids, because the shared photos hardly contain a closed eye. Weighting the eyelid points (5×) with
half the samples' eyes closed then moved the predicted eye ratio apart by only 0.02 in 750 steps. The
regression loss reaches the backbone through 600 anchors' offsets, weakly; this head asks the pooled
features for each eye's opening directly, so the backbone learns it within a hundred steps (same
setting plus this head: 0.065 apart after 100 steps), and the offsets can then use it.

The head exists only in training: it is saved in the resumable checkpoint (``last.pt``), never in the
exported model, and costs nothing at run time.
"""
from __future__ import annotations

import torch
from torch import nn

from core.face_state import EYE_CONTOURS, measure
from core.schemes import LandmarkScheme


class EyeOpenness(nn.Module):
    """Each eye's aspect ratio (``core.face_state.aspect_ratio``) from the pooled bottleneck features."""

    #: The head starts at this answer for every eye (about an open eye's ratio), with zero weights: a
    #: randomly initialised head answered ±0.5 at first, and its error, pushed into a trained backbone,
    #: took stage 4's validation NME from 5.11 to 6.36 % in the first epoch.
    START_RATIO = 0.3

    def __init__(self, channels: int, eyes: int = len(EYE_CONTOURS)) -> None:
        super().__init__()
        self.linear = nn.Linear(channels, eyes)
        nn.init.zeros_(self.linear.weight)
        nn.init.constant_(self.linear.bias, self.START_RATIO)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features.mean(dim=(2, 3)))


def eye_ratios(landmarks: torch.Tensor, scheme: LandmarkScheme) -> torch.Tensor:
    """``[N, 2]`` the app's eye ratios (``core.face_state.measure``: left, right) of target shapes
    ``[N, L, 2]``; NaN where a point of that eye is hidden (NaN). Targets need no gradient, so the app's
    own numpy measure is used rather than a torch copy of it."""
    states = [measure(face, scheme) for face in landmarks.detach().cpu().numpy()]
    return torch.tensor([[s.eye_left, s.eye_right] for s in states], dtype=landmarks.dtype, device=landmarks.device)


def eye_openness_loss(predicted: torch.Tensor, landmarks: torch.Tensor, scheme: LandmarkScheme) -> torch.Tensor:
    """L1 between predicted and true eye ratios over the eyes whose points are all visible (0 if none)."""
    target = eye_ratios(landmarks, scheme)
    known = torch.isfinite(target)
    if not known.any():
        return predicted.sum() * 0.0
    return (predicted - torch.nan_to_num(target))[known].abs().mean()
