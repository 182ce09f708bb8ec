"""Parameter and multiply–accumulate counts, to compare with the paper's 227 M FLOPs.

Counts convolutions and linear layers (everything else is negligible in ShuffleNetV2); reported as
MACs, the unit the ShuffleNet and AnchorFace papers call "FLOPs".
"""
from __future__ import annotations

import torch
from torch import nn

from core.geometry import INPUT_SIZE


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, input_size: int = INPUT_SIZE) -> int:
    """Multiply–accumulates of one forward pass on a ``[1, 3, S, S]`` input."""
    total = 0

    def conv_hook(module: nn.Conv2d, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        kernel = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        total += output.numel() * kernel

    def linear_hook(module: nn.Linear, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() * module.in_features

    handles = [m.register_forward_hook(conv_hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    handles += [m.register_forward_hook(linear_hook) for m in model.modules() if isinstance(m, nn.Linear)]
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(1, 3, input_size, input_size))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total
