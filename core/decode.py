"""Aggregation of per-anchor predictions into one face shape (the paper's Eq. 2–3 and its ablations).

Kept out of the model graph on purpose: the strategy and threshold are run-time settings, and the
direct-regression baseline (one "anchor" with confidence 1) goes through the same code.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STRATEGIES = ("weighted", "argmax", "mean")
DEFAULT_THRESHOLD = 0.6


@dataclass(frozen=True)
class Aggregated:
    """Per-face result: ``landmarks [N, L, 2]`` and a face score ``confidence [N]`` (best anchor's)."""

    landmarks: np.ndarray
    confidence: np.ndarray


def aggregate(anchor_landmarks: np.ndarray, anchor_confidence: np.ndarray, strategy: str = "weighted",
              threshold: float = DEFAULT_THRESHOLD) -> Aggregated:
    """Combine ``[N, M, L, 2]`` anchor predictions with ``[N, M]`` confidences.

    * ``weighted``: confidence-weighted mean of anchors with C ≥ ``threshold``; a face where no anchor
      passes falls back to ``argmax`` (the paper is silent; dividing by zero is not an option).
    * ``argmax``: the single most confident anchor.
    * ``mean``: unweighted mean of all anchors.
    """
    preds = np.asarray(anchor_landmarks, dtype=np.float32)
    conf = np.asarray(anchor_confidence, dtype=np.float32)
    if preds.ndim != 4 or preds.shape[-1] != 2 or conf.shape != preds.shape[:2]:
        raise ValueError(f"expected landmarks [N, M, L, 2] and confidence [N, M], got {preds.shape} and {conf.shape}")
    if preds.shape[1] == 0:
        raise ValueError("no anchors to aggregate (M = 0)")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown aggregation {strategy!r}; use one of {', '.join(STRATEGIES)}")
    score = conf.max(axis=1)
    best = preds[np.arange(len(preds)), conf.argmax(axis=1)]
    if strategy == "argmax":
        return Aggregated(best, score)
    if strategy == "mean":
        return Aggregated(preds.mean(axis=1), score)
    weights = np.where(conf >= threshold, conf, 0.0).astype(np.float32)
    total = weights.sum(axis=1)
    safe = np.where(total > 0, total, 1.0)
    weighted = np.einsum("nm,nmlc->nlc", weights, preds) / safe[:, None, None]
    return Aggregated(np.where((total > 0)[:, None, None], weighted, best), score)
