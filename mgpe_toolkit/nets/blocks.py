"""Building blocks shared by the networks (pix2pixHD-like: conv-norm-ReLU, residual blocks, resize-conv)."""
from __future__ import annotations

import torch
from torch import nn


def norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r} (batch, instance or none)")


class ConvNormAct(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, norm: str = "instance",
                 act: str = "relu"):
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, padding_mode="reflect" if k > 1 else "zeros",
                                             bias=norm == "none"),
                                   norm_layer(norm, cout)]
        if act == "relu":
            layers.append(nn.ReLU(inplace=True))
        elif act == "lrelu":
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        super().__init__(*layers)


class ResBlock(nn.Module):
    def __init__(self, channels: int, norm: str = "instance"):
        super().__init__()
        self.body = nn.Sequential(ConvNormAct(channels, channels, norm=norm),
                                  ConvNormAct(channels, channels, norm=norm, act="none"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Up(nn.Sequential):
    """Nearest 2× upsampling then a 3×3 conv: no checkerboard artefacts, exports to ONNX Resize."""

    def __init__(self, cin: int, cout: int, norm: str = "instance"):
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), ConvNormAct(cin, cout, norm=norm))
