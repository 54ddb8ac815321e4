"""Two-scale conditional PatchGAN discriminators (pix2pixHD-style), conditioned on the one-hot target mask."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .generator import NUM_CLASSES


class PatchDiscriminator(nn.Module):
    def __init__(self, width: int, layers: int):
        super().__init__()
        blocks: list[nn.Module] = [nn.Sequential(nn.Conv2d(3 + NUM_CLASSES, width, 4, 2, 1), nn.LeakyReLU(0.2, True))]
        ch = width
        for i in range(1, layers):
            nxt = min(ch * 2, 512)
            blocks.append(nn.Sequential(nn.Conv2d(ch, nxt, 4, 2 if i < layers - 1 else 1, 1),
                                        nn.InstanceNorm2d(nxt, affine=True), nn.LeakyReLU(0.2, True)))
            ch = nxt
        blocks.append(nn.Conv2d(ch, 1, 4, 1, 1))  # logits per patch
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

    def __init__(self, width: int, layers: int, scales: int = 2):
        super().__init__()
        self.scales = nn.ModuleList(PatchDiscriminator(width, layers) for _ in range(scales))

    def forward(self, image: torch.Tensor, onehot: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for i, d in enumerate(self.scales):
            if i:
                image = F.avg_pool2d(image, 3, 2, 1, count_include_pad=False)
                onehot = F.avg_pool2d(onehot, 3, 2, 1, count_include_pad=False)
            out.append(d(image, onehot))
        return out
