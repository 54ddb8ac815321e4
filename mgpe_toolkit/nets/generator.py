"""Mask-guided generative sub-network: mask encoder E_m, feature placement, foreground generator G_m.

Placement follows the paper: for each small component (eyes, mouth) a zero tensor the size of the mask feature
receives the component's feature tensor, copied in centred at the component's centre in the TARGET mask
(the crop box is shifted to lie inside the image, as `labels.crop_box` does). Skin and hair features already
cover the whole grid. Placement is built from comparisons and matrix products, so it exports to ONNX with the
centres as a graph input.
"""
from __future__ import annotations

import torch
from torch import nn

from .blocks import ConvNormAct, ResBlock, Up
from .config import FEATURE_STRIDE

NUM_CLASSES = 19


class MaskEncoder(nn.Module):
    """E_m: one-hot target mask (19, S, S) -> mask feature (C, S/4, S/4)."""

    def __init__(self, out_channels: int, norm: str = "instance"):
        super().__init__()
        mid = max(16, out_channels // 2)
        self.body = nn.Sequential(
            ConvNormAct(NUM_CLASSES, mid, norm=norm),
            ConvNormAct(mid, out_channels, stride=2, norm=norm),
            ConvNormAct(out_channels, out_channels, stride=2, norm=norm),
        )

    def forward(self, onehot: torch.Tensor) -> torch.Tensor:
        return self.body(onehot)


def crop_offsets(centres: torch.Tensor, crop_wh: tuple[int, int], resolution: int) -> torch.Tensor:
    """(N, 2) image-pixel centres -> (N, 2) integer (x0, y0) of the crop box, shifted inside the image.
    Matches labels.crop_box (round-half-even aside, which no centre from a pixel mask hits)."""
    w, h = crop_wh
    half = centres.new_tensor([w / 2, h / 2])
    limit = centres.new_tensor([resolution - w, resolution - h])
    x0 = torch.floor(centres - half + 0.5)
    return torch.minimum(torch.clamp(x0, min=0.0), limit)


def place(feature: torch.Tensor, centres: torch.Tensor, crop_wh: tuple[int, int], resolution: int) -> torch.Tensor:
    """Copy (N, C, h, w) component features into zero (N, C, G, G) grids at each sample's crop box."""
    centres = centres.float()  # index maths in fp32 (also when the features are fp16)
    offsets = torch.floor(crop_offsets(centres, crop_wh, resolution) / FEATURE_STRIDE)  # (N, 2) on the grid
    return place_at(feature, offsets, resolution // FEATURE_STRIDE)


def place_at(feature: torch.Tensor, offsets: torch.Tensor, grid: int) -> torch.Tensor:
    """(N, C, h, w) features into zero (N, C, grid, grid) maps with their top-left at (N, 2) integer (x0, y0):
    out = Py · feature · Pxᵀ with 0/1 matrices Py (G×h), Px (G×w), so it exports to ONNX."""
    n, c, fh, fw = feature.shape
    offsets = offsets.float()
    rows = torch.arange(grid, device=feature.device, dtype=torch.float32)
    ys = offsets[:, 1:2] + torch.arange(fh, device=feature.device, dtype=torch.float32)  # (N, fh)
    xs = offsets[:, 0:1] + torch.arange(fw, device=feature.device, dtype=torch.float32)  # (N, fw)
    py = (rows[None, :, None] == ys[:, None, :]).to(feature.dtype).unsqueeze(1)  # (N, 1, G, fh)
    px = (xs[:, :, None] == rows[None, None, :]).to(feature.dtype).unsqueeze(1)  # (N, 1, fw, G)
    return torch.matmul(torch.matmul(py, feature), px)


class ForegroundGenerator(nn.Module):
    """G_m: fused tensor (mask feature + five placed component features) -> foreground face in [-1, 1]."""

    def __init__(self, in_channels: int, width: int, blocks: int, norm: str = "instance"):
        super().__init__()
        self.body = nn.Sequential(
            ConvNormAct(in_channels, width, norm=norm),
            *[ResBlock(width, norm=norm) for _ in range(blocks)],
            Up(width, width // 2, norm=norm),
            Up(width // 2, width // 4, norm=norm),
            nn.Conv2d(width // 4, 3, 3, padding=1, padding_mode="reflect"),
            nn.Tanh(),
        )

    def forward(self, fused: torch.Tensor) -> torch.Tensor:
        return self.body(fused)
