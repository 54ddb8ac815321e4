"""Background fusing sub-network: E_b encodes the target image with the face removed; G_b takes that feature
and the generated foreground and paints the final image, hiding seams at the neck and hair border."""
from __future__ import annotations

import torch
from torch import nn

from .blocks import ConvNormAct, ResBlock, Up


class BackgroundEncoder(nn.Module):
    """E_b: (background RGB with the face zeroed, removal mask) (4, S, S) -> (C, S/4, S/4)."""

    def __init__(self, width: int, norm: str = "instance"):
        super().__init__()
        self.body = nn.Sequential(
            ConvNormAct(4, width // 2, norm=norm),
            ConvNormAct(width // 2, width, stride=2, norm=norm),
            ConvNormAct(width, width, stride=2, norm=norm),
        )

    def forward(self, background: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([background, removed], 1))


class BackgroundFuser(nn.Module):
    """G_b: foreground (3, S, S) + background feature (C, S/4, S/4) -> final image in [-1, 1].

    The foreground is brought to the feature grid by a strided stem, concatenated with the background feature,
    refined by residual blocks and upsampled; a full-resolution skip of both inputs keeps fine detail."""

    def __init__(self, width: int, blocks: int, norm: str = "instance"):
        super().__init__()
        self.stem = nn.Sequential(ConvNormAct(3, width // 2, norm=norm),
                                  ConvNormAct(width // 2, width, stride=2, norm=norm),
                                  ConvNormAct(width, width, stride=2, norm=norm))
        self.mid = nn.Sequential(ConvNormAct(2 * width, width, norm=norm),
                                 *[ResBlock(width, norm=norm) for _ in range(blocks)],
                                 Up(width, width // 2, norm=norm), Up(width // 2, width // 4, norm=norm))
        self.out = nn.Sequential(ConvNormAct(width // 4 + 3 + 4, width // 4, norm=norm),
                                 nn.Conv2d(width // 4, 3, 3, padding=1, padding_mode="reflect"), nn.Tanh())

    def forward(self, foreground: torch.Tensor, bg_feature: torch.Tensor, background: torch.Tensor,
                removed: torch.Tensor) -> torch.Tensor:
        y = self.mid(torch.cat([self.stem(foreground), bg_feature], 1))
        return self.out(torch.cat([y, foreground, background, removed], 1))
