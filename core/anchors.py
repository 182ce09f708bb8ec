"""Anchor points and anchor templates: the prior shapes AnchorFace regresses offsets from.

The model predicts, for every anchor point ``a`` on a small grid near the crop centre and every
template ``t`` (a base face shape in one of several rolls), an offset from ``T(a, t)`` and a
confidence. Templates are data computed once from the training shapes; they are saved inside
checkpoints and ONNX files so run time never recomputes them.

Layout conventions used everywhere (model head, ONNX output, decoding):

* anchor points are numbered row-major, ``cell = row * grid + col`` (row is y, col is x);
* the flattened anchor index is ``m = cell * K + t`` with ``K = num_base * num_rolls``;
* template ``t = base * num_rolls + roll``; roll ``r`` is a counter-clockwise rotation of
  ``r * 360 / num_rolls`` degrees as displayed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.geometry import INPUT_SIZE, rotation_matrix
from core.schemes import LandmarkScheme

#: Output stride of the backbone: one anchor point per cell of the final feature map.
FEATURE_STRIDE = 32
#: Side of the anchor area as a fraction of the crop side (the paper's 56 px of 224).
ANCHOR_AREA_FRACTION = 0.25


def anchor_grid(input_size: int) -> int:
    """Anchor grid side for an input size: the feature map's side (7 at 224, 5 at 160, 4 at 128)."""
    if input_size % FEATURE_STRIDE:
        raise ValueError(f"input size must be a multiple of {FEATURE_STRIDE}, got {input_size}")
    return input_size // FEATURE_STRIDE


def anchor_area(input_size: int) -> float:
    """Side in px of the anchor area: a quarter of the crop at every size (56 at 224, 40 at 160)."""
    return ANCHOR_AREA_FRACTION * input_size


@dataclass(frozen=True)
class AnchorConfig:
    """Anchor geometry and template recipe; defaults are the paper's best setting."""

    input_size: int = INPUT_SIZE
    grid: int = anchor_grid(INPUT_SIZE)
    area: float = anchor_area(INPUT_SIZE)
    num_base: int = 3
    num_rolls: int = 8
    method: str = "kmeans"  # "kmeans" or "handdesign"
    gamma: float = 6.0  # eye-width-ratio threshold of the hand-designed buckets
    seed: int = 0

    @property
    def num_templates(self) -> int:
        return self.num_base * self.num_rolls


def anchor_points(grid: int = anchor_grid(INPUT_SIZE), area: float = anchor_area(INPUT_SIZE),
                  input_size: int = INPUT_SIZE) -> np.ndarray:
    """``[grid*grid, 2]`` anchor centres (x, y) in crop pixels.

    The ``area``-wide square centred in the crop is cut into ``grid × grid`` equal cells and each
    anchor sits at its cell's centre: with the defaults, 8 px apart from 87.5 to 135.5 — the same
    tiling as the 7×7 stride-32 feature map, whose cell ``(row, col)`` owns anchor ``(row, col)``.
    """
    mid = (input_size - 1) / 2.0
    step = area / grid
    coords = mid - area / 2.0 + (np.arange(grid) + 0.5) * step
    ys, xs = np.meshgrid(coords, coords, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def eye_line_angle(shapes: np.ndarray, scheme: LandmarkScheme) -> np.ndarray:
    """Roll of each ``[N, L, 2]`` shape in degrees: angle of the outer-eye-corner line, CCW positive."""
    left, right = scheme.outer_eye_corners
    d = shapes[:, right] - shapes[:, left]
    return np.rad2deg(np.arctan2(-d[:, 1], d[:, 0]))


def normalise_shapes(shapes: np.ndarray, scheme: LandmarkScheme, input_size: int = INPUT_SIZE) -> np.ndarray:
    """Centre each crop-space shape on the crop centre and undo its roll, so clusters capture yaw/expression.

    Shapes come from crops made by the crop policy, so they are already scale-normalised; removing
    roll lets the rotation step, not the clustering, account for in-plane rotation.
    """
    mid = (input_size - 1) / 2.0
    centred = np.asarray(shapes, dtype=np.float64) - mid
    angles = eye_line_angle(centred, scheme)
    out = np.empty_like(centred)
    for i, angle in enumerate(angles):
        out[i] = centred[i] @ rotation_matrix(-angle).T
    return out


def eye_width_ratio(shapes: np.ndarray, scheme: LandmarkScheme) -> np.ndarray:
    """The paper's yaw cue r = |l1−l2|/|r1−r2| − |r1−r2|/|l1−l2| per shape (0 for a frontal face).

    Positive when the eye on the image's left looks wider, i.e. the face turns towards image-right.
    """
    lo, li = scheme.left_eye_corners
    ro, ri = scheme.right_eye_corners
    left = np.linalg.norm(shapes[:, lo] - shapes[:, li], axis=1)
    right = np.linalg.norm(shapes[:, ro] - shapes[:, ri], axis=1)
    eps = 1e-6
    return left / (right + eps) - right / (left + eps)


def handdesign_base_shapes(shapes: np.ndarray, scheme: LandmarkScheme, gamma: float = 6.0) -> np.ndarray:
    """Three base shapes as bucket means: r < −γ, |r| ≤ γ (frontal), r > γ. An empty bucket borrows
    the mirror of its opposite (or the frontal mean) so K stays fixed."""
    r = eye_width_ratio(shapes, scheme)
    buckets = [r < -gamma, np.abs(r) <= gamma, r > gamma]
    means: list[np.ndarray | None] = [shapes[b].mean(axis=0) if b.any() else None for b in buckets]
    frontal = means[1] if means[1] is not None else shapes.mean(axis=0)
    means[1] = frontal
    found = list(means)  # borrow only from buckets that really had faces, not from one just filled in
    for side, other in ((0, 2), (2, 0)):
        if found[side] is None:
            source = found[other] if found[other] is not None else frontal
            means[side] = mirror_shape(source, scheme)
    return np.stack(means)  # type: ignore[arg-type]


def mirror_shape(shape: np.ndarray, scheme: LandmarkScheme) -> np.ndarray:
    """Horizontal mirror of an origin-centred shape with the scheme's index permutation."""
    flipped = shape[list(scheme.mirror)].copy()
    flipped[:, 0] *= -1
    return flipped


def kmeans_base_shapes(shapes: np.ndarray, k: int, seed: int = 0, iterations: int = 100) -> np.ndarray:
    """K-means (k-means++ seeding) over flattened shapes; clusters sorted by the mean x of all their
    points (turned one way, frontal, turned the other) so the order is stable. Deterministic given ``seed``."""
    data = shapes.reshape(len(shapes), -1)
    if len(data) < k:
        raise ValueError(f"need at least {k} shapes for {k} clusters, got {len(data)}")
    rng = np.random.default_rng(seed)
    centres = [data[rng.integers(len(data))]]
    for _ in range(1, k):
        d2 = np.min([((data - c) ** 2).sum(axis=1) for c in centres], axis=0)
        centres.append(data[rng.choice(len(data), p=d2 / d2.sum())])
    c = np.stack(centres)
    for _ in range(iterations):
        labels = ((data[:, None, :] - c[None]) ** 2).sum(axis=2).argmin(axis=1)
        new = np.stack([data[labels == j].mean(axis=0) if (labels == j).any() else c[j] for j in range(k)])
        if np.allclose(new, c):
            break
        c = new
    base = c.reshape(k, *shapes.shape[1:])
    # Order by horizontal asymmetry (mean x of all points): turned-left, frontal, turned-right.
    order = np.argsort(base[:, :, 0].mean(axis=1))
    return base[order]


def roll_templates(base_shapes: np.ndarray, num_rolls: int) -> np.ndarray:
    """``[B * num_rolls, L, 2]`` templates: each base shape rotated about its own centre (the origin)."""
    out = []
    for base in base_shapes:
        for r in range(num_rolls):
            out.append(base @ rotation_matrix(360.0 * r / num_rolls).T)
    return np.stack(out)


def build_templates(crop_shapes: np.ndarray, scheme: LandmarkScheme, config: AnchorConfig = AnchorConfig()) -> np.ndarray:
    """Origin-centred ``[K, L, 2]`` templates from training shapes given in crop pixels.

    Only shapes with every point visible are used: a hidden point (NaN) has no position to cluster.
    """
    crop_shapes = np.asarray(crop_shapes, dtype=np.float64)
    crop_shapes = crop_shapes[np.isfinite(crop_shapes).all(axis=(1, 2))]
    shapes = normalise_shapes(crop_shapes, scheme, config.input_size)
    if config.method == "kmeans":
        base = kmeans_base_shapes(shapes, config.num_base, config.seed)
    elif config.method == "handdesign":
        if config.num_base != 3:
            raise ValueError("the hand-designed templates have exactly 3 base shapes")
        base = handdesign_base_shapes(shapes, scheme, config.gamma)
    else:
        raise ValueError(f"unknown template method {config.method!r}; use 'kmeans' or 'handdesign'")
    return roll_templates(base, config.num_rolls)


def place_templates(templates: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``[A * K, L, 2]`` absolute templates T(a, t) in crop pixels, index ``m = a * K + t``."""
    return (points[:, None, None, :] + templates[None]).reshape(-1, *templates.shape[1:])


def save_templates(path: str | Path, templates: np.ndarray, config: AnchorConfig, scheme: LandmarkScheme) -> None:
    """Save templates as a plain ``.npz`` of arrays (no pickle), with the config beside them."""
    np.savez(path, templates=templates.astype(np.float32), scheme=np.array(scheme.name),
             grid=config.grid, area=config.area, num_base=config.num_base, num_rolls=config.num_rolls,
             input_size=config.input_size, method=np.array(config.method), gamma=config.gamma,
             seed=config.seed)


def load_templates(path: str | Path) -> tuple[np.ndarray, AnchorConfig, str]:
    """Inverse of :func:`save_templates`; returns ``(templates, config, scheme_name)``."""
    with np.load(path, allow_pickle=False) as f:
        config = AnchorConfig(input_size=int(f["input_size"]), grid=int(f["grid"]), area=float(f["area"]),
                              num_base=int(f["num_base"]), num_rolls=int(f["num_rolls"]), method=str(f["method"]),
                              gamma=float(f["gamma"]), seed=int(f["seed"]))
        return f["templates"].astype(np.float64), config, str(f["scheme"])
