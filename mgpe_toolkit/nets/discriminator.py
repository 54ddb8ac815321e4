"""Two-scale conditional PatchGAN discriminators (pix2pixHD-style), conditioned on the one-hot target mask."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .generator import NUM_CLASSES


class PatchDiscriminator(nn.Module):
    """4×4 convs: stride 2 for all but the last two, widths doubling to at most 8 × width, then logits. With
    layers 4 and padding 2 it is the authors' (receptive field 70); the lean presets use padding 1."""

    def __init__(self, width: int, layers: int, norm: str = "instance", padding: int = 1):
        super().__init__()
        from .blocks import norm_layer

        blocks: list[nn.Module] = [nn.Sequential(nn.Conv2d(3 + NUM_CLASSES, width, 4, 2, padding),
                                                 nn.LeakyReLU(0.2, True))]
        ch = width
        for i in range(1, layers):
            nxt = min(ch * 2, 8 * width)
            blocks.append(nn.Sequential(nn.Conv2d(ch, nxt, 4, 2 if i < layers - 1 else 1, padding),
                                        norm_layer(norm, nxt), nn.LeakyReLU(0.2, True)))
            ch = nxt
        blocks.append(nn.Conv2d(ch, 1, 4, 1, padding))  # logits per patch
        self.blocks = nn.ModuleList(blocks)

    def forward(self, image: torch.Tensor, onehot: torch.Tensor) -> list[torch.Tensor]:
        """Every block's output; the last is the patch logits."""
        feats, x = [], torch.cat([image, onehot], 1)
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats


class MultiScaleDiscriminator(nn.Module):
    """D_1 on the image, D_2 on a 2× average-pooled copy (identical structure)."""

    def __init__(self, width: int, layers: int, scales: int = 2, norm: str = "instance", padding: int = 1):
        super().__init__()
        self.scales = nn.ModuleList(PatchDiscriminator(width, layers, norm, padding) for _ in range(scales))

    def forward(self, image: torch.Tensor, onehot: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for i, d in enumerate(self.scales):
            if i:
                image = F.avg_pool2d(image, 3, 2, 1, count_include_pad=False)
                onehot = F.avg_pool2d(onehot, 3, 2, 1, count_include_pad=False)
            out.append(d(image, onehot))
        return out
