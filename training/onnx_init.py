"""Start training from an exported model file: rebuild the torch AnchorFace from an ``.onnx`` file's
weights, optionally at another input size.

Only the ONNX file of a shipped model survives in the repository (checkpoints live in the ignored
runs/), so a new version that should build on the last one has to start from its graph. Two things
the exporter changed are undone here:

* batch norm was folded into the preceding convolution (weight and bias). Each folded convolution is
  paired with the torch convolution that runs at the same position (both graphs run in forward order;
  shapes are checked) and its batch norm is set so that eval mode gives exactly the folded result and
  train mode, which normalises with batch statistics, gives the same result on real crops: the running
  mean and variance are the convolution's own per-channel statistics on ``crops``
  (:func:`recalibrate_batch_norm`).
* templates were placed at the anchor points; they are recovered from the first anchor cell. The
  anchor layout and the offsets are fractions of the crop, and the network is convolutional, so a model
  moves to another input size by scaling the templates by ``new / old`` size: the head predicts the
  same fractions, on one anchor per cell of the smaller feature map.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from core.anchors import anchor_points
from core.runtime.contract import ModelError, ModelMetadata, read_props
from models.anchorface import AnchorFace, ModelConfig


class OnnxInitError(ValueError):
    """The ONNX file cannot be mapped onto the torch model; the message says why."""


def _forward_convs(model: nn.Module, input_size: int) -> list[nn.Conv2d]:
    """Convolutions in the order the forward pass runs them (the order the exporter wrote them)."""
    order: list[nn.Conv2d] = []
    handles = [m.register_forward_hook(lambda mod, _i, _o: order.append(mod))
               for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, input_size, input_size))
    finally:
        for h in handles:
            h.remove()
    return order


def _batch_norm_after(model: nn.Module) -> dict[nn.Conv2d, nn.BatchNorm2d]:
    """Each bias-free convolution and the batch norm that follows it in its Sequential."""
    pairs = {}
    for seq in model.modules():
        if isinstance(seq, nn.Sequential):
            layers = list(seq)
            for a, b in zip(layers, layers[1:]):
                if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                    pairs[a] = b
    return pairs


def model_from_onnx(path: str | Path, input_size: int | None = None) -> tuple[AnchorFace, ModelConfig]:
    """The torch AnchorFace of an exported file (eval mode), moved to ``input_size`` if given."""
    path = Path(path)
    try:
        graph = onnx.load(str(path))
    except Exception as exc:  # onnx raises several types for a corrupt file
        raise OnnxInitError(f"{path}: not a readable ONNX file ({exc})") from exc
    try:
        meta = ModelMetadata.from_props(read_props(graph), path)  # the runtime's own check, format version included
    except ModelError as exc:
        raise OnnxInitError(str(exc)) from exc
    if meta.model_type != "anchorface":
        raise OnnxInitError(f"{path}: only AnchorFace files can initialise training (model_type "
                            f"{meta.model_type!r})")
    weights = {t.name: numpy_helper.to_array(t) for t in graph.graph.initializer}
    old_size, old_grid = meta.input_size, meta.grid
    placed = weights["model.placed_templates"].astype(np.float64)
    k = meta.num_templates
    templates = placed[:k] - anchor_points(old_grid, meta.anchor_area, old_size)[0]
    size = input_size or old_size
    config = ModelConfig.for_input_size(size, scheme=meta.scheme, num_points=placed.shape[1],
                                        width=meta.width, num_templates=k,
                                        head_channels=int(weights["model.confidence.weight"].shape[1]))
    model = AnchorFace(config, templates * (size / old_size))
    convs = _forward_convs(model, size)
    nodes = [n for n in graph.graph.node if n.op_type == "Conv"]
    if len(nodes) != len(convs):
        raise OnnxInitError(f"{path}: {len(nodes)} convolutions in the file, {len(convs)} in the model")
    norms = _batch_norm_after(model)
    with torch.no_grad():
        for node, conv in zip(nodes, convs):
            w = torch.from_numpy(weights[node.input[1]].copy())
            b = torch.from_numpy(weights[node.input[2]].copy()) if len(node.input) > 2 else torch.zeros(w.shape[0])
            if tuple(w.shape) != tuple(conv.weight.shape):
                raise OnnxInitError(f"{path}: convolution {node.name} has shape {tuple(w.shape)}, the model "
                                    f"expects {tuple(conv.weight.shape)} at that position")
            conv.weight.copy_(w)
            if conv in norms:
                bn = norms[conv]
                bn.weight.fill_(1.0)
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                bn.bias.copy_(b)
            elif conv.bias is not None:
                conv.bias.copy_(b)
            else:
                raise OnnxInitError(f"{path}: convolution {node.name} has a bias the model has nowhere to put")
    return model.eval(), config


@torch.no_grad()
def recalibrate_batch_norm(model: nn.Module, crops: torch.Tensor) -> None:
    """Give every folded batch norm the statistics of its convolution on ``crops`` (eval output unchanged).

    With running mean μ, variance σ², weight sqrt(σ² + ε) and bias μ + b, eval mode computes x + b as the
    folded graph did, and train mode (batch statistics ≈ μ, σ) computes nearly the same.
    """
    norms = _batch_norm_after(model)
    stats: dict[nn.Conv2d, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = [conv.register_forward_hook(
        lambda mod, _i, out: stats.__setitem__(mod, (out.mean(dim=(0, 2, 3)), out.var(dim=(0, 2, 3)))))
        for conv in norms]
    try:
        model.eval()(crops)
    finally:
        for h in handles:
            h.remove()
    for conv, bn in norms.items():
        mean, var = stats[conv]
        bias = bn.bias - bn.running_mean * bn.weight / torch.sqrt(bn.running_var + bn.eps)  # the folded b
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
        bn.weight.copy_(torch.sqrt(var + bn.eps))
        bn.bias.copy_(mean + bias)
