"""The parsing network P_F of the paper: a U-Net trained with pixel-wise cross-entropy.

Input: RGB in [-1, 1], (N, 3, S, S) with S divisible by 2**depth. Output: (N, classes, S, S) logits over the
canonical labels. Differentiable end to end (the generator's parsing loss back-propagates through it) and
built from ops that export to ONNX.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .blocks import ConvNormAct


@dataclass(frozen=True)
class UNetConfig:
    classes: int = 19
    base: int = 16  # channels at full resolution, doubled at each level
    depth: int = 4
    norm: str = "batch"

    def to_dict(self) -> dict:
        return asdict(self)


class UNet(nn.Module):
    def __init__(self, config: UNetConfig = UNetConfig()):
        super().__init__()
        self.config = config
        c = [config.base * 2 ** i for i in range(config.depth + 1)]
        self.stem = nn.Sequential(ConvNormAct(3, c[0], norm=config.norm), ConvNormAct(c[0], c[0], norm=config.norm))
        self.down = nn.ModuleList(
            nn.Sequential(ConvNormAct(c[i], c[i + 1], stride=2, norm=config.norm),
                          ConvNormAct(c[i + 1], c[i + 1], norm=config.norm))
            for i in range(config.depth))
        self.up = nn.ModuleList(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
                                for _ in range(config.depth))
        self.merge = nn.ModuleList(
            nn.Sequential(ConvNormAct(c[i + 1] + c[i], c[i], norm=config.norm), ConvNormAct(c[i], c[i], norm=config.norm))
            for i in reversed(range(config.depth)))
        self.head = nn.Conv2d(c[0], config.classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up, merge in zip(self.up, self.merge):
            y = merge(torch.cat([up(y), skips.pop()], 1))
        return self.head(y)


def class_weights(frequencies: torch.Tensor, power: float = 0.5, clip: tuple[float, float] = (0.25, 10.0)) -> torch.Tensor:
    """Median-frequency balancing, softened by `power`: rare small parts (eyes, brows, lips) weigh more, as the
    paper's emphasis on small parts asks. Classes never seen get the largest weight."""
    f = frequencies.double()
    seen = f > 0
    if not seen.any():
        return torch.ones_like(frequencies, dtype=torch.float32)
    median = f[seen].median()
    w = torch.where(seen, (median / f.clamp_min(1e-12)) ** power, torch.full_like(f, clip[1]))
    return w.clamp(*clip).float()
