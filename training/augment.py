"""Training-time augmentation that goes through the run-time crop policy.

Each sample is cut with ONE affine warp: rotate about the face, take the landmark box of the rotated
face, jitter its centre and size, then crop with core.geometry's policy and warp — so a training crop
differs from a run-time crop only by the jitter we chose, never by a second cropping rule.

Hidden points (NaN) stay NaN through the warp and the flip's permutation, and the crop box is taken
from the visible points only (core.geometry.landmark_box), as the data's own crops were.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.geometry import (CROP_MARGIN, INPUT_SIZE, landmark_box, rotation_matrix, square_crop_transform,
                           transform_points, warp_to_crop)
from core.schemes import LandmarkScheme


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths (every one a CLI option of training.train)."""

    wide_rotation_prob: float = 0.35  # share of samples rotated uniformly in ±180° (templates cover 360°)
    rotation_std: float = 15.0  # degrees, for the other samples
    scale_jitter: float = 0.10  # log-uniform ± on the crop side
    shift_jitter: float = 0.06  # ± fraction of the crop side
    flip_prob: float = 0.5
    colour_prob: float = 0.8
    gray_prob: float = 0.1
    blur_prob: float = 0.2
    occlusion_prob: float = 0.25


def crop_with_jitter(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator | None,
                     config: AugmentConfig, size: int = INPUT_SIZE, margin: float = CROP_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """Rotated, jittered policy crop of ``size`` px. ``rng=None`` gives the plain evaluation crop."""
    if rng is None:
        angle, scale, shift = 0.0, 1.0, np.zeros(2)
    else:
        wide = rng.random() < config.wide_rotation_prob
        angle = rng.uniform(-180, 180) if wide else float(np.clip(rng.normal(0, config.rotation_std), -60, 60))
        scale = float(np.exp(rng.uniform(-config.scale_jitter, config.scale_jitter)))
        shift = rng.uniform(-config.shift_jitter, config.shift_jitter, size=2)
    box = landmark_box(landmarks)
    c0 = np.array(box.center)
    rot = rotation_matrix(angle)
    rotated = (landmarks - c0) @ rot.T
    rbox = landmark_box(rotated)
    side = margin * rbox.size * scale
    centre_rot = np.array(rbox.center) + shift * side
    centre = c0 + rot.T @ centre_rot  # back to image coordinates
    matrix = square_crop_transform(tuple(centre), side, size, angle)
    return warp_to_crop(image, matrix, size), transform_points(landmarks, matrix).astype(np.float32)


def flip(crop: np.ndarray, landmarks: np.ndarray, scheme: LandmarkScheme) -> tuple[np.ndarray, np.ndarray]:
    """Mirror a crop and remap landmark indices with the scheme's permutation (hidden points move with
    their index, so the visibility mask is permuted too)."""
    flipped = landmarks[list(scheme.mirror)].copy()
    flipped[:, 0] = crop.shape[1] - 1 - flipped[:, 0]
    return np.ascontiguousarray(crop[:, ::-1]), flipped


def photometric(crop: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Colour, grey, blur and a random occluding rectangle — appearance only, landmarks unchanged."""
    out = crop.astype(np.float32)
    if rng.random() < config.colour_prob:
        out = out * rng.uniform(0.6, 1.4) + rng.uniform(-40, 40)  # contrast, brightness
        out = out * rng.uniform(0.85, 1.15, size=3)  # per-channel gain (white balance)
    if rng.random() < config.gray_prob:
        out[:] = out.mean(axis=2, keepdims=True)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < config.blur_prob:
        k = int(rng.choice([3, 5, 7]))
        out = cv2.GaussianBlur(out, (k, k), 0)
    if rng.random() < config.occlusion_prob:
        h, w = out.shape[:2]
        ow, oh = (rng.uniform(0.1, 0.35, size=2) * (w, h)).astype(int)
        x, y = rng.integers(0, w - ow), rng.integers(0, h - oh)
        out[y:y + oh, x:x + ow] = rng.integers(0, 256, size=3)
    return out


def augment(image: np.ndarray, landmarks: np.ndarray, scheme: LandmarkScheme, rng: np.random.Generator,
            config: AugmentConfig = AugmentConfig(), size: int = INPUT_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """One training sample: geometric crop jitter, optional flip, photometric changes."""
    crop, pts = crop_with_jitter(image, landmarks, rng, config, size)
    if rng.random() < config.flip_prob:
        crop, pts = flip(crop, pts, scheme)
    return photometric(crop, rng, config), pts
