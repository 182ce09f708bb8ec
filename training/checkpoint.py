"""Checkpoints as plain dicts of tensors and primitives, loadable with ``torch.load(weights_only=True)``
(which refuses arbitrary pickled objects, so a downloaded checkpoint cannot run code)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.anchorface import ModelConfig, build_model


class CheckpointError(ValueError):
    """A checkpoint file is missing, not a checkpoint, or inconsistent; the message names the file."""


def save_checkpoint(path: str | Path, model: nn.Module, config: ModelConfig, **extra: object) -> None:
    """Write atomically (temp file + rename) so an interrupted save never leaves a broken checkpoint."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"format": 1, "config": config.to_dict(), "model": model.state_dict(), **extra}, tmp)
    tmp.replace(path)


def read_checkpoint(path: str | Path) -> dict:
    """Load the raw dict safely; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt/unsafe files
        raise CheckpointError(f"{path}: not a readable AnchorFace checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict) or "config" not in data or "model" not in data:
        raise CheckpointError(f"{path}: not an AnchorFace checkpoint (missing 'config'/'model' entries)")
    return data


def load_model_from_checkpoint(path: str | Path) -> tuple[nn.Module, ModelConfig, dict]:
    """Rebuild the model (templates/mean shape come from the checkpoint's buffers)."""
    data = read_checkpoint(path)
    try:
        config = ModelConfig(**data["config"])
        state = data["model"]
        prior_key = "templates" if config.model_type == "anchorface" else "mean_shape"
        prior = np.zeros(tuple(state[prior_key].shape), np.float32)
        model = build_model(config, prior)
        model.load_state_dict(state)
    except (TypeError, KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{path}: checkpoint does not match the model code ({exc})") from exc
    model.eval()
    return model, config, data
