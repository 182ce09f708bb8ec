"""Open what evaluation can run: an exported ONNX file (core.offline.evaluation.OnnxPredictor, through the same
core runtime the app uses) or a training checkpoint (torch, here). Both take uint8 BGR policy crops."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.offline.evaluation import AnchorPredictor, OnnxPredictor
from core.geometry import CROP_MARGIN
from core.runtime import to_model_input


@dataclass
class TorchPredictor:
    """A checkpoint run in torch eval mode on the CPU (or ``device``)."""

    model: torch.nn.Module
    scheme: str
    input_size: int
    crop_margin: float = CROP_MARGIN
    device: str = "cpu"

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu") -> "TorchPredictor":
        from training.checkpoint import load_model_from_checkpoint

        model, config, _ = load_model_from_checkpoint(path)
        return cls(model.to(device), config.scheme, config.input_size, device=device)

    @torch.no_grad()
    def predict(self, crops_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = torch.from_numpy(to_model_input(crops_bgr))
        landmarks, logits = self.model(x.to(self.device))
        return landmarks.cpu().numpy(), torch.sigmoid(logits).cpu().numpy()


def open_predictor(path: str | Path, device: str = "auto") -> AnchorPredictor:
    """ONNX for ``.onnx`` files, a checkpoint otherwise."""
    if Path(path).suffix.lower() == ".onnx":
        return OnnxPredictor.from_file(path, device)
    return TorchPredictor.from_checkpoint(path, "cuda" if device == "cuda" else "cpu")
