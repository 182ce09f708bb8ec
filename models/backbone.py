"""ShuffleNetV2 (Ma et al., 2018), written out here because torchvision cannot be installed beside the
CPU torch build. Output: the stride-32 feature map (7×7 for a 224 input) that AnchorFace's heads use.
"""
from __future__ import annotations

import torch
from torch import nn

#: Output channels of stem, stage 2, 3, 4 and the final 1×1 conv per width multiplier (the paper's table).
STAGE_CHANNELS: dict[float, tuple[int, int, int, int, int]] = {
    0.5: (24, 48, 96, 192, 1024),
    1.0: (24, 116, 232, 464, 1024),
    1.5: (24, 176, 352, 704, 1024),
    2.0: (24, 244, 488, 976, 2048),
}
STAGE_REPEATS = (4, 8, 4)


def shuffle_order(channels: int, groups: int = 2) -> torch.Tensor:
    """Channel indices of ShuffleNet's shuffle as one fixed permutation.

    Equivalent to the usual view → transpose → reshape, but exported as a single Gather with constant
    indices: the reshape form makes the ONNX graph compute shapes at run time (Shape, Gather, Div,
    Unsqueeze, Concat nodes in every unit), which cost about a quarter of the CPU inference time.
    """
    return torch.arange(channels).view(groups, channels // groups).t().reshape(-1)


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ShuffleUnit(nn.Module):
    """The ShuffleNetV2 unit: channel split (stride 1) or two downsampling branches (stride 2), then shuffle."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        half = cout // 2
        branch_in = cin if stride == 2 else cin // 2
        self.branch2 = nn.Sequential(
            conv_bn(branch_in, half, 1),
            conv_bn(half, half, 3, stride, groups=half, relu=False),
            conv_bn(half, half, 1),
        )
        self.branch1 = nn.Sequential(
            conv_bn(cin, cin, 3, stride, groups=cin, relu=False),
            conv_bn(cin, half, 1),
        ) if stride == 2 else nn.Identity()
        self.split = cin // 2  # a Python int, so the split exports as a constant Slice
        self.register_buffer("order", shuffle_order(cout), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            out = torch.cat([x[:, :self.split], self.branch2(x[:, self.split:])], dim=1)
        else:
            out = torch.cat([self.branch1(x), self.branch2(x)], dim=1)
        return out.index_select(1, self.order)


class ShuffleNetV2(nn.Module):
    """Backbone returning the final ``[N, C, H/32, W/32]`` feature map (C = ``out_channels``)."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        if width not in STAGE_CHANNELS:
            raise ValueError(f"unsupported width {width}; use one of {sorted(STAGE_CHANNELS)}")
        stem, *stages, last = STAGE_CHANNELS[width]
        self.stem = nn.Sequential(conv_bn(3, stem, 3, 2), nn.MaxPool2d(3, 2, 1))
        blocks: list[nn.Module] = []
        cin = stem
        for cout, repeats in zip(stages, STAGE_REPEATS):
            blocks.append(ShuffleUnit(cin, cout, 2))
            blocks.extend(ShuffleUnit(cout, cout, 1) for _ in range(repeats - 1))
            cin = cout
        self.stages = nn.Sequential(*blocks)
        self.last = conv_bn(cin, last, 1)
        self.out_channels = last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last(self.stages(self.stem(x)))
