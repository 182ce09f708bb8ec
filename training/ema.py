"""An exponential moving average of a model's weights, the copy that is validated and exported.

At the end of a schedule the raw weights still move from batch to batch: v4's validation NME swung
5.18–5.46 % over its last 20 epochs, so "the best epoch" was partly the luckiest one. The average over
the last few hundred steps sits in the middle of that swing and needs no lucky pick. Batch-norm running
statistics are averaged like the weights (they are already averages, so this only smooths them more);
integer buffers (batch counters) are copied.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """``shadow`` follows ``model`` as ``shadow ← decay · shadow + (1 − decay) · model`` after each step.

    The effective decay ramps up as ``min(decay, (1 + n) / (10 + n))`` over the first updates, so the
    average is not anchored to the initial weights in a short run (the usual warm-up of EMA weights).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.shadow = copy.deepcopy(model).eval()
        for p in self.shadow.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for mine, theirs in zip(self.shadow.state_dict().values(), model.state_dict().values()):
            if mine.dtype.is_floating_point:
                mine.lerp_(theirs.detach(), 1.0 - decay)
            else:
                mine.copy_(theirs)

    def state_dict(self) -> dict[str, object]:
        return {"decay": self.decay, "updates": self.updates, "weights": self.shadow.state_dict()}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.decay = float(state["decay"])
        self.updates = int(state["updates"])
        self.shadow.load_state_dict(state["weights"])
