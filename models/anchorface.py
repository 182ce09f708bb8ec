"""AnchorFace and the direct-regression baseline as torch modules.

Both take RGB crops with values in [0, 1] (normalisation is part of the module, so the exported graph
needs no preprocessing contract beyond that) and return per-anchor landmarks in crop pixels plus
confidence logits. The baseline is one "anchor" with an infinite logit, so both decode the same way.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from core.anchors import anchor_area, anchor_grid, anchor_points, place_templates
from core.geometry import INPUT_SIZE
from models.backbone import ShuffleNetV2

#: Per-channel mean/std applied inside the model (ImageNet statistics; any fixed values would do
#: since there is no pretrained backbone, but these keep activations well scaled).
PIXEL_MEAN = (0.485, 0.456, 0.406)
PIXEL_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model from a checkpoint (stored in it as a plain dict)."""

    model_type: str = "anchorface"  # or "direct"
    scheme: str = "ibug68"
    num_points: int = 68
    width: float = 1.0
    input_size: int = INPUT_SIZE
    grid: int = anchor_grid(INPUT_SIZE)
    anchor_area: float = anchor_area(INPUT_SIZE)
    num_templates: int = 24
    #: Channels of the 1×1 bottleneck between the backbone and the per-anchor outputs. The paper's
    #: plain 1×1 head from 1024 channels to K·(2L+1) = 3288 channels costs more MACs than the whole
    #: backbone; a 256-channel bottleneck keeps a low-rank per-cell code and cuts that 4×.
    head_channels: int = 256
    #: Offsets are predicted as fractions of the crop size.
    offset_scale: float = float(INPUT_SIZE)

    @classmethod
    def for_input_size(cls, input_size: int = INPUT_SIZE, **kwargs: object) -> "ModelConfig":
        """A config whose anchor grid, anchor area and offset unit follow the input size (one anchor per
        stride-32 cell, the area a quarter of the crop): the paper's geometry at every size."""
        return cls(input_size=input_size, grid=anchor_grid(input_size), anchor_area=anchor_area(input_size),
                   offset_scale=float(input_size), **kwargs)

    def to_dict(self) -> dict:
        return asdict(self)


class Normalise(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(PIXEL_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class AnchorFace(nn.Module):
    """Backbone + confidence branch (K per cell) + regression branch (K·2L per cell).

    ``templates`` ([K, L, 2], origin-centred, crop pixels) are a buffer, so checkpoints carry them.
    ``forward`` returns ``(anchor_landmarks [N, M, L, 2], confidence_logits [N, M])`` with
    ``m = (row * grid + col) * K + t`` as documented in core/anchors.py.
    """

    def __init__(self, config: ModelConfig, templates: np.ndarray) -> None:
        super().__init__()
        k, points = config.num_templates, config.num_points
        if templates.shape != (k, points, 2):
            raise ValueError(f"templates must be [{k}, {points}, 2], got {templates.shape}")
        if config.grid != anchor_grid(config.input_size):
            raise ValueError(f"grid {config.grid} must equal the feature map side {anchor_grid(config.input_size)} "
                             f"of a {config.input_size} px input (one anchor point per cell)")
        self.config = config
        self.normalise = Normalise()
        self.backbone = ShuffleNetV2(config.width)
        self.neck = nn.Sequential(nn.Conv2d(self.backbone.out_channels, config.head_channels, 1, bias=False),
                                  nn.BatchNorm2d(config.head_channels), nn.ReLU(inplace=True))
        self.confidence = nn.Conv2d(config.head_channels, k, 1)
        self.regression = nn.Conv2d(config.head_channels, k * points * 2, 1)
        nn.init.normal_(self.regression.weight, std=1e-3)
        nn.init.zeros_(self.regression.bias)
        nn.init.zeros_(self.confidence.bias)
        placed = place_templates(np.asarray(templates, np.float64),
                                 anchor_points(config.grid, config.anchor_area, config.input_size))
        self.register_buffer("templates", torch.as_tensor(np.asarray(templates), dtype=torch.float32))
        self.register_buffer("placed_templates", torch.as_tensor(placed, dtype=torch.float32))

    def forward(self, image: torch.Tensor, with_features: bool = False) -> tuple[torch.Tensor, ...]:
        """``(anchor_landmarks, confidence_logits)``, and the ``[N, C, H, W]`` bottleneck features after them
        when ``with_features`` (training's auxiliary eye-openness head reads them; the export never asks)."""
        feats = self.neck(self.backbone(self.normalise(image)))
        anchors, points = self.placed_templates.shape[:2]
        # [N, K*L*2, H, W] -> [N, H, W, K, L, 2] -> [N, M, L, 2]; sizes are Python ints so the exported
        # graph reshapes with constants instead of computing shapes at run time.
        offsets = self.regression(feats).permute(0, 2, 3, 1).reshape(-1, anchors, points, 2)
        logits = self.confidence(feats).permute(0, 2, 3, 1).reshape(-1, anchors)
        landmarks = self.placed_templates + offsets * self.config.offset_scale
        return (landmarks, logits, feats) if with_features else (landmarks, logits)


class DirectRegression(nn.Module):
    """The paper's baseline: the same backbone, global pooling and one linear layer of 2L outputs.

    The output starts at the mean training shape (a small-data remedy measured in the summary: without
    it the network sits on the mean shape for a long time) and is returned as a single anchor.
    """

    def __init__(self, config: ModelConfig, mean_shape: np.ndarray) -> None:
        super().__init__()
        self.config = config
        self.normalise = Normalise()
        self.backbone = ShuffleNetV2(config.width)
        self.fc = nn.Linear(self.backbone.out_channels, config.num_points * 2)
        nn.init.normal_(self.fc.weight, std=1e-3)
        nn.init.zeros_(self.fc.bias)
        self.register_buffer("mean_shape", torch.as_tensor(np.asarray(mean_shape), dtype=torch.float32))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.backbone(self.normalise(image)).mean(dim=(2, 3))
        shape = self.mean_shape + self.fc(pooled).view(-1, self.config.num_points, 2) * self.config.offset_scale
        logits = torch.full((shape.shape[0], 1), 30.0, dtype=shape.dtype, device=shape.device)
        return shape[:, None], logits


def build_model(config: ModelConfig, prior: np.ndarray) -> nn.Module:
    """The model for ``config``; ``prior`` is the templates (AnchorFace) or the mean shape (direct)."""
    if config.model_type == "anchorface":
        return AnchorFace(config, prior)
    if config.model_type == "direct":
        return DirectRegression(config, prior)
    raise ValueError(f"unknown model type {config.model_type!r}; use 'anchorface' or 'direct'")


class ExportWrapper(nn.Module):
    """What goes into the ONNX file: landmarks and sigmoid confidences, per the model-file contract."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        landmarks, logits = self.model(image)
        return landmarks, torch.sigmoid(logits)
