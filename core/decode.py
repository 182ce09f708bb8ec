"""Aggregation of per-anchor predictions into one face shape (the paper's Eq. 2–3 and its ablations),
and the per-landmark uncertainty that comes with it.

Kept out of the model graph on purpose: the strategy and threshold are run-time settings, and the
direct-regression baseline (one "anchor" with confidence 1) goes through the same code.

Uncertainty: every anchor that passes C_th predicts all L points, so where the passing anchors disagree
about a point, that point is ambiguous (occluded, blurred, off the crop). Their confidence-weighted RMS
distance from the aggregate, per point, is an uncertainty in crop pixels that costs one pass over the
anchors the aggregation reads anyway; ``benchmarks/uncertainty.py`` measures how well it ranks the real
errors. A direct-regression model (M = 1) has no spread to measure and reports ``None``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from core.registry import Choice, Registry

DEFAULT_THRESHOLD = 0.6


def with_mirrored_pass(run: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], crops: np.ndarray,
                       mirror: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Flip test-time averaging at the anchor level: run the model on the crops and on their mirror
    images, map the mirrored pass's points back (``x → S − 1 − x``, 0-based pixel centres, and the
    scheme's ``mirror`` permutation), and return both passes' anchors together (``[N, 2M, L, 2]``,
    ``[N, 2M]``). Aggregation then averages the two passes with their confidences, and the spread of
    the anchors (the uncertainty) covers both. Costs a second model pass.
    """
    landmarks, confidence = run(crops)
    mirrored, mirrored_confidence = run(np.ascontiguousarray(crops[:, :, ::-1]))
    back = np.array(mirrored[:, :, list(mirror)], dtype=np.float32)
    back[..., 0] = crops.shape[2] - 1 - back[..., 0]
    return (np.concatenate([np.asarray(landmarks, np.float32), back], axis=1),
            np.concatenate([confidence, mirrored_confidence], axis=1))


#: Fewest anchors a spread is measured over: with fewer passing C_th the spread is taken over all
#: anchors, confidence-weighted (one anchor alone would report zero uncertainty when it is least sure).
MIN_SPREAD_ANCHORS = 2


@dataclass(frozen=True)
class Aggregated:
    """Per-face result: ``landmarks [N, L, 2]``, a face score ``confidence [N]`` (best anchor's) and
    ``uncertainty [N, L]`` in the landmarks' pixels (``None`` for a single-anchor model)."""

    landmarks: np.ndarray
    confidence: np.ndarray
    uncertainty: np.ndarray | None = None


def aggregate(anchor_landmarks: np.ndarray, anchor_confidence: np.ndarray, strategy: str = "weighted",
              threshold: float = DEFAULT_THRESHOLD) -> Aggregated:
    """Combine ``[N, M, L, 2]`` anchor predictions with ``[N, M]`` confidences.

    * ``weighted``: confidence-weighted mean of anchors with C ≥ ``threshold``; a face where no anchor
      passes falls back to ``argmax`` (the paper is silent; dividing by zero is not an option).
    * ``argmax``: the single most confident anchor.
    * ``mean``: unweighted mean of all anchors.

    ``uncertainty`` is, for every strategy, the spread of the anchors passing ``threshold`` around the
    returned shape (:func:`anchor_spread`).
    """
    preds = np.asarray(anchor_landmarks, dtype=np.float32)
    conf = np.asarray(anchor_confidence, dtype=np.float32)
    if preds.ndim != 4 or preds.shape[-1] != 2 or conf.shape != preds.shape[:2]:
        raise ValueError(f"expected landmarks [N, M, L, 2] and confidence [N, M], got {preds.shape} and {conf.shape}")
    if preds.shape[1] == 0:
        raise ValueError("no anchors to aggregate (M = 0)")
    combine = STRATEGIES[strategy].make
    score = conf.max(axis=1)
    best = preds[np.arange(len(preds)), conf.argmax(axis=1)]
    shape = combine(preds, conf, best, threshold)
    return Aggregated(shape, score, anchor_spread(preds, conf, shape, threshold))


def _weighted_mean(preds: np.ndarray, conf: np.ndarray, best: np.ndarray, threshold: float) -> np.ndarray:
    """``Σ w·p / Σ w`` per face over the anchors with ``C ≥ threshold`` (``w = C``); ``best`` where none passes."""
    weights = np.where(conf >= threshold, conf, 0.0).astype(np.float32)
    total = weights.sum(axis=1)
    safe = np.where(total > 0, total, 1.0)
    weighted = np.einsum("nm,nmlc->nlc", weights, preds) / safe[:, None, None]
    return np.where((total > 0)[:, None, None], weighted, best)


#: How the anchors of one face (``[N, M, L, 2]`` predictions, ``[N, M]`` confidences, the most confident
#: anchor ``[N, L, 2]``, the threshold) become one shape ``[N, L, 2]``. A new strategy is one entry here.
Combine = Callable[[np.ndarray, np.ndarray, np.ndarray, float], np.ndarray]
STRATEGIES: Registry[Combine] = Registry("aggregation", [
    Choice("weighted", "Confidence-weighted mean", _weighted_mean),
    Choice("argmax", "Most confident anchor", lambda preds, conf, best, threshold: best),
    Choice("mean", "Plain mean of all anchors", lambda preds, conf, best, threshold: preds.mean(axis=1)),
])


def anchor_spread(preds: np.ndarray, conf: np.ndarray, centre: np.ndarray,
                  threshold: float = DEFAULT_THRESHOLD) -> np.ndarray | None:
    """Per-point uncertainty ``[N, L]``: ``sqrt(Σ_m C_m·|p_m − centre|² / Σ_m C_m)`` over the anchors with
    ``C_m ≥ threshold`` (over all anchors where fewer than :data:`MIN_SPREAD_ANCHORS` pass), in the
    pixels of ``preds``. ``None`` for a single-anchor (direct-regression) model."""
    if preds.shape[1] < MIN_SPREAD_ANCHORS:
        return None
    passing = conf >= threshold
    few = passing.sum(axis=1) < MIN_SPREAD_ANCHORS
    spread = np.empty((preds.shape[0], preds.shape[2]), dtype=np.float32)
    for n in range(len(preds)):  # only the anchors that count: typically a few dozen of over a thousand
        used = slice(None) if few[n] else np.flatnonzero(passing[n])
        weights = conf[n, used].astype(np.float64)
        weights /= max(weights.sum(), 1e-12)
        points = preds[n, used].reshape(len(weights), -1).astype(np.float64)  # [used, L*2]
        # Σw|p − c|² from the weighted first and second moments: two matrix-vector products instead of
        # an [anchors, L, 2] difference array, which on a non-face (every anchor used) cost 1.4 ms a crop.
        first, second = weights @ points, weights @ (points * points)
        centred = centre[n].reshape(-1).astype(np.float64)
        variance = (second - 2 * centred * first + centred * centred).reshape(-1, 2).sum(axis=1)
        spread[n] = np.sqrt(np.maximum(variance, 0.0))
    return spread


def uncertainty_to_image(uncertainty: np.ndarray, crop_to_image: np.ndarray) -> np.ndarray:
    """Crop-pixel uncertainties ``[..., L]`` in image pixels: times the linear scale of the 2×3
    crop→image affine (the same map the landmarks go through; ``sqrt|det|`` for a similarity)."""
    scale = float(np.sqrt(abs(np.linalg.det(np.asarray(crop_to_image, dtype=np.float64)[:, :2]))))
    return (np.asarray(uncertainty, dtype=np.float64) * scale).astype(np.float32)
