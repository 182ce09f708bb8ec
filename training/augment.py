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

from core.geometry import (CROP_MARGIN, INPUT_SIZE, crop_from_landmarks, landmark_box, rotation_matrix,
                           square_crop_transform, transform_points, warp_to_crop)
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
    eye_close_prob: float = 0.0  # share of samples whose eyes are closed part or all the way (close_eyes)


def crop_with_jitter(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator | None,
                     config: AugmentConfig, size: int = INPUT_SIZE, margin: float = CROP_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """Rotated, jittered policy crop of ``size`` px. ``rng=None`` gives the plain evaluation crop: the
    run-time policy crop itself (:func:`core.geometry.crop_from_landmarks`, snapped to whole pixels)."""
    matrix = (crop_from_landmarks(landmarks, size, margin) if rng is None
              else _jittered_crop(landmarks, rng, config, size, margin))
    return warp_to_crop(image, matrix, size), transform_points(landmarks, matrix).astype(np.float32)


def _jittered_crop(landmarks: np.ndarray, rng: np.random.Generator, config: AugmentConfig, size: int,
                   margin: float) -> np.ndarray:
    """The policy crop's 2×3 matrix rotated, scaled and shifted at random within ``config``'s ranges."""
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
    return square_crop_transform(tuple(centre), side, size, angle)


def flip(crop: np.ndarray, landmarks: np.ndarray, scheme: LandmarkScheme) -> tuple[np.ndarray, np.ndarray]:
    """Mirror a crop and remap landmark indices with the scheme's permutation (hidden points move with
    their index, so the visibility mask is permuted too)."""
    flipped = landmarks[list(scheme.mirror)].copy()
    flipped[:, 0] = crop.shape[1] - 1 - flipped[:, 0]
    return np.ascontiguousarray(crop[:, ::-1]), flipped


#: Height of the upper-lid skin that slides down with the lid, as a fraction of the eye's width.
LID_SKIN = 0.5


def close_eyes(image: np.ndarray, landmarks: np.ndarray, scheme: LandmarkScheme,
               amount: float) -> tuple[np.ndarray, np.ndarray]:
    """Close both eyes by ``amount`` (0 open .. 1 shut): the upper lid moves toward the lower one,
    the skin above it slides down with it and the opening between them is squeezed to a line.

    Why: the shared photos hardly contain a closed eye, so a model trained on them keeps its lid points
    near the open position through a blink (v4's eye ratio fell 2–3 % on a full blink). The warp is a
    column-wise 1-D remap in each eye's own frame (u along the corner-to-corner axis, v across it), so it
    follows a rolled face, leaves everything below the lower lid and beyond the corners untouched, and
    moves the upper lid points exactly as it moves the pixels under them. An eye with a hidden point
    stays as it is.
    """
    out, pts = image.copy(), np.asarray(landmarks, np.float64).copy()
    for outer, inner, upper, lower in scheme.eyes:
        if not np.isfinite(pts[[outer, inner, *upper, *lower]]).all():
            continue
        left, right = sorted((pts[outer], pts[inner]), key=lambda p: p[0])
        width = float(np.linalg.norm(right - left))
        if width < 4.0:
            continue
        ex = (right - left) / width
        ey = np.array([-ex[1], ex[0]])  # across the eye, pointing down the face

        def local(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            rel = np.asarray(points, np.float64) - left
            return rel @ ex / width, rel @ ey

        def lid(indices: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
            u, v = local(np.vstack([left, pts[list(indices)], right]))
            order = np.argsort(u)
            return u[order], v[order]

        up_u, up_v = lid(upper)
        low_u, low_v = lid(lower)
        skin = LID_SKIN * width
        lo, hi = np.floor(np.vstack([left, right, pts[list(upper)]]).min(axis=0) - skin - 2).astype(int), \
            np.ceil(np.vstack([left, right, pts[list(lower)]]).max(axis=0) + skin + 2).astype(int)
        lo, hi = np.maximum(lo, 0), np.minimum(hi, [out.shape[1] - 1, out.shape[0] - 1])
        if (hi <= lo).any():
            continue
        ys, xs = np.mgrid[lo[1]:hi[1] + 1, lo[0]:hi[0] + 1].astype(np.float64)
        u, v = local(np.stack([xs, ys], axis=-1))
        v_up, v_low = np.interp(u, up_u, up_v), np.interp(u, low_u, low_v)
        v_new = v_up + amount * (v_low - v_up)
        top = v_up - skin
        inside = (u > 0) & (u < 1) & (v >= top) & (v <= v_low)
        above = inside & (v <= v_new)
        below = inside & (v > v_new)
        src_v = v.copy()
        src_v[above] = (top + (v - top) * (v_up - top) / np.maximum(v_new - top, 1e-6))[above]
        src_v[below] = (v_up + (v - v_new) * (v_low - v_up) / np.maximum(v_low - v_new, 1e-6))[below]
        src = left + (u * width)[..., None] * ex + src_v[..., None] * ey
        out[lo[1]:hi[1] + 1, lo[0]:hi[0] + 1] = cv2.remap(
            image, src[..., 0].astype(np.float32), src[..., 1].astype(np.float32), cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE)
        lid_u, lid_v = local(pts[list(upper)])
        pts[list(upper)] += (amount * (np.interp(lid_u, low_u, low_v) - lid_v))[:, None] * ey
    return out, pts.astype(np.asarray(landmarks).dtype)


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
    """One training sample: optional eye closure, geometric crop jitter, optional flip, photometric changes."""
    if config.eye_close_prob > 0 and rng.random() < config.eye_close_prob:  # no draw when off: old seeds stay
        image, landmarks = close_eyes(image, landmarks, scheme, float(rng.uniform(0.4, 1.0)))
    crop, pts = crop_with_jitter(image, landmarks, rng, config, size)
    if rng.random() < config.flip_prob:
        crop, pts = flip(crop, pts, scheme)
    return photometric(crop, rng, config), pts
