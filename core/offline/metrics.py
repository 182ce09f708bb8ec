"""Landmark accuracy metrics as the literature reports them: NME, FR@0.1, AUC@0.1, CED, and the
confidence–error correlation AnchorFace uses to show its confidences are meaningful.

Hidden points (NaN in the ground truth, e.g. MERL-RAV's self-occluded far side) are left out of every
error; a face whose outer eye corner is hidden has no inter-ocular distance, so it is normalised by
``FALLBACK`` instead, and :func:`normalisations` says which faces were.
"""
from __future__ import annotations

import numpy as np

from core.geometry import landmark_box
from core.schemes import LandmarkScheme

NORMALISATIONS = ("inter_ocular", "box_diagonal", "face_size")
#: What a face without both outer eye corners is normalised by under ``inter_ocular``.
FALLBACK = "box_diagonal"


def normalisations(gt: np.ndarray, scheme: LandmarkScheme, kind: str = "inter_ocular") -> np.ndarray:
    """``[N]`` the normalisation each face of ``[N, L, 2]`` ground truth gets under ``kind``."""
    gt = np.asarray(gt, dtype=np.float64)
    kinds = np.full(len(gt), kind, dtype=object)
    if kind == "inter_ocular":
        corners = np.isfinite(gt[:, list(scheme.outer_eye_corners)]).all(axis=(1, 2))
        kinds[~corners] = FALLBACK
    return kinds


def normaliser(gt: np.ndarray, scheme: LandmarkScheme, kind: str = "inter_ocular") -> np.ndarray:
    """Per-image normalising distance for ``[N, L, 2]`` ground truth.

    ``inter_ocular``: outer eye corners (300W, WFLW), ``FALLBACK`` where one is hidden;
    ``box_diagonal``: visible landmarks' box diagonal (Menpo); ``face_size``: sqrt(w·h) of that box (AFLW).
    """
    gt = np.asarray(gt, dtype=np.float64)
    if kind == "inter_ocular":
        a, b = scheme.outer_eye_corners
        dist = np.linalg.norm(gt[:, a] - gt[:, b], axis=1)
        hidden = ~np.isfinite(dist)
        if hidden.any():
            dist[hidden] = normaliser(gt[hidden], scheme, FALLBACK)
        return dist
    if kind not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation {kind!r}; use one of {', '.join(NORMALISATIONS)}")
    boxes = [landmark_box(g) for g in gt]
    if kind == "box_diagonal":
        return np.array([np.hypot(b.width, b.height) for b in boxes])
    if kind == "face_size":
        return np.array([np.sqrt(b.width * b.height) for b in boxes])
    raise ValueError(f"unknown normalisation {kind!r}; use one of {', '.join(NORMALISATIONS)}")


def nme(pred: np.ndarray, gt: np.ndarray, scheme: LandmarkScheme, kind: str = "inter_ocular") -> np.ndarray:
    """Per-image NME (a fraction, not %): mean point-to-point error over the visible landmarks / normaliser."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3:
        raise ValueError(f"pred and gt must both be [N, L, 2], got {pred.shape} and {gt.shape}")
    return point_errors(pred, gt) / normaliser(gt, scheme, kind)


def point_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``[...]`` mean point-to-point distance over the points visible in ``gt`` (last two axes ``[L, 2]``)."""
    dist = np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(gt, np.float64), axis=-1)
    visible = np.isfinite(dist)
    return np.where(visible, dist, 0.0).sum(axis=-1) / np.maximum(visible.sum(axis=-1), 1)


def signed_errors(pred: np.ndarray, gt: np.ndarray, scheme: LandmarkScheme,
                  kind: str = "inter_ocular") -> np.ndarray:
    """``[N, 2]`` mean signed error (pred − gt, x and y) over each face's visible points / its normaliser.

    NME cannot see a systematic offset: a cloud of errors centred one pixel low scores like one centred
    on the truth. The signed mean can — a convention mismatch (1-based labels, a resize that maps
    corners instead of pixel centres) shows up as a constant here and averages out to zero otherwise.
    """
    diff = np.asarray(pred, np.float64) - np.asarray(gt, np.float64)
    visible = np.isfinite(diff).all(axis=-1)
    mean = np.where(visible[..., None], diff, 0.0).sum(axis=-2) / np.maximum(visible.sum(axis=-1), 1)[..., None]
    return mean / normaliser(gt, scheme, kind)[:, None]


def eyelid_nme(pred: np.ndarray, gt: np.ndarray, scheme: LandmarkScheme, kind: str = "inter_ocular") -> np.ndarray:
    """``[N]`` NME over the scheme's eyelid points only (the points a blink moves); NaN for a scheme
    that names none (an average over no points would read as a perfect score)."""
    gt = np.asarray(gt, np.float64)
    if not scheme.eyelids:
        return np.full(len(gt), np.nan)
    lids = list(scheme.eyelids)
    return point_errors(np.asarray(pred, np.float64)[:, lids], gt[:, lids]) / normaliser(gt, scheme, kind)


def failure_rate(nmes: np.ndarray, threshold: float = 0.1) -> float:
    """Share of images whose NME exceeds ``threshold`` (FR@0.1)."""
    nmes = np.asarray(nmes, dtype=np.float64)
    return float((nmes > threshold).mean()) if nmes.size else float("nan")


def ced_curve(nmes: np.ndarray, max_error: float = 0.1, steps: int = 1001) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution: ``(errors, fraction of images with NME ≤ error)``."""
    nmes = np.sort(np.asarray(nmes, dtype=np.float64))
    xs = np.linspace(0.0, max_error, steps)
    ys = np.searchsorted(nmes, xs, side="right") / max(len(nmes), 1)
    return xs, ys


def auc(nmes: np.ndarray, max_error: float = 0.1, steps: int = 1001) -> float:
    """Area under the CED curve up to ``max_error``, normalised to [0, 1] (AUC@0.1)."""
    xs, ys = ced_curve(nmes, max_error, steps)
    return float(np.trapz(ys, xs) / max_error)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation (e.g. anchor confidence vs anchor error; the paper reports −0.82)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.size < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def anchor_errors(anchor_landmarks: np.ndarray, gt: np.ndarray, scheme: LandmarkScheme) -> np.ndarray:
    """``[N, M]`` NME of every anchor's prediction against its face's ground truth."""
    err = point_errors(anchor_landmarks, np.asarray(gt, np.float64)[:, None])
    return err / normaliser(gt, scheme)[:, None]
