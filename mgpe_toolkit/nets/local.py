"""Local embedding sub-network: one auto-encoder {E_local^i, G_local^i} per facial component.

Each encoder maps a component crop (3, h, w) to a spatial feature tensor (C, h/4, w/4) on the same grid as the
mask feature; the decoder reconstructs the crop (L_local). With `vae`, the encoder also predicts a log-variance
and training samples the feature (reparameterisation), so synthesis can draw new appearances.
"""
from __future__ import annotations

import torch
from torch import nn

from .blocks import ConvNormAct, ResBlock, Up


class ComponentEncoder(nn.Module):
    def __init__(self, out_channels: int, width: int, norm: str = "instance", vae: bool = False):
        super().__init__()
        self.vae = vae
        self.body = nn.Sequential(
            ConvNormAct(3, width, norm=norm),
            ConvNormAct(width, width * 2, stride=2, norm=norm),
            ConvNormAct(width * 2, width * 2, stride=2, norm=norm),
            ResBlock(width * 2, norm=norm),
        )
        self.mu = nn.Conv2d(width * 2, out_channels, 1)
        self.logvar = nn.Conv2d(width * 2, out_channels, 1) if vae else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(feature, logvar or None). The feature is mu; `sample` draws around it."""
        h = self.body(x)
        return self.mu(h), (self.logvar(h).clamp(-10, 10) if self.logvar is not None else None)

    @staticmethod
    def sample(mu: torch.Tensor, logvar: torch.Tensor | None, generator: torch.Generator | None = None) -> torch.Tensor:
        if logvar is None:
            return mu
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + eps * torch.exp(0.5 * logvar)


class ComponentDecoder(nn.Module):
    def __init__(self, in_channels: int, width: int, norm: str = "instance"):
        super().__init__()
        self.body = nn.Sequential(
            ConvNormAct(in_channels, width * 2, norm=norm),
            ResBlock(width * 2, norm=norm),
            Up(width * 2, width, norm=norm),
            Up(width, width, norm=norm),
            nn.Conv2d(width, 3, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.body(f)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)), averaged over elements."""
    return 0.5 * torch.mean(mu.pow(2) + logvar.exp() - 1.0 - logvar)
