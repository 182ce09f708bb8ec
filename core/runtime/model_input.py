"""The model-file input convention in one place: uint8 BGR crops → float32 RGB NCHW in 0..1.

Run time, evaluation of checkpoints, export checks and training all call :func:`to_model_input`,
so none can drift from the others.
"""
from __future__ import annotations

import numpy as np


def to_model_input(crops: np.ndarray) -> np.ndarray:
    """uint8 BGR ``[N, S, S, 3]`` → float32 RGB ``[N, 3, S, S]`` in 0..1.

    The channel flip and the transpose are strided views, so the only real work is the single
    multiply that writes the contiguous float tensor.
    """
    n, h, w, _ = crops.shape
    out = np.empty((n, 3, h, w), dtype=np.float32)
    np.multiply(crops[..., ::-1].transpose(0, 3, 1, 2), np.float32(1.0 / 255.0), out=out, casting="unsafe")
    return out
