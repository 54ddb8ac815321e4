"""The networks of the `paper` preset, built to the structure of the authors' released code (OFFICIAL-ARCH.md):
VAE component encoders to latent vectors, feature decoders onto G_m's grid, image decoders for the local loss,
E_m, G_m (residual blocks, a feature map out, not RGB), E_b on the whole target, G_b. Widths come from the
config; at the preset's widths the inference networks hold 163.6 M parameters like the authors'.

Every network runs at 256² only: the number of downsamplings is part of the structure (an eye crop of 48×32 ends
at 3×2 after four).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .blocks import norm_layer

RESOLUTION = 256
# (downsamplings of the encoder, grid of the feature decoder's output as a fraction of the crop)
DOWNS = {"left_eye": 4, "right_eye": 4, "mouth": 4, "skin": 7, "hair": 7}


def _down(cin: int, cout: int, norm: str) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), norm_layer(norm, cout), nn.ReLU(True))


def _up(cin: int, cout: int, norm: str) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1), norm_layer(norm, cout), nn.ReLU(True))


def encoder_widths(name: str, width: int) -> list[int]:
    """Channels after each downsampling: 64-128-256-512 (eyes, mouth), then 512 three more times (skin, hair)."""
    return [width * min(2 ** i, 8) for i in range(DOWNS[name])]


class VAEComponentEncoder(nn.Module):
    """A component crop (3, h, w) -> (mu, logvar), each (latent,): strided convs, then two MLP heads."""

    def __init__(self, name: str, crop_hw: tuple[int, int], width: int, latent: int, norm: str):
        super().__init__()
        chans = encoder_widths(name, width)
        self.body = nn.Sequential(*[_down(cin, cout, norm) for cin, cout in zip([3, *chans[:-1]], chans)])
        h, w = (d >> len(chans) for d in crop_hw)
        flat = chans[-1] * h * w
        self.mu = nn.Sequential(nn.Linear(flat, 2 * latent), nn.ReLU(True), nn.Linear(2 * latent, latent))
        self.logvar = nn.Sequential(nn.Linear(flat, 2 * latent), nn.ReLU(True), nn.Linear(2 * latent, latent))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x).flatten(1)
        return self.mu(h), self.logvar(h).clamp(-10, 10)


class LatentDecoder(nn.Module):
    """A latent vector -> a map: Linear to (c0, h0, w0), then ConvTranspose 2× steps (channels `ups`), and for
    image decoders a reflect-padded 5×5 conv to RGB with tanh."""

    def __init__(self, latent: int, start: tuple[int, int, int], ups: list[int], norm: str, rgb: bool):
        super().__init__()
        self.start = start
        self.fc = nn.Linear(latent, math.prod(start))
        chans = [start[0], *ups]
        layers: list[nn.Module] = [_up(cin, cout, norm) for cin, cout in zip(chans[:-1], chans[1:])]
        if rgb:
            layers += [nn.ReflectionPad2d(2), nn.Conv2d(chans[-1], 3, 5), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.fc(z).view(-1, *self.start))


def feature_decoder(name: str, crop_hw: tuple[int, int], width: int, latent: int, out: int,
                    norm: str) -> LatentDecoder:
    """Latent -> the component's map on the 64² grid: eyes 8×12, mouth 20×36 (two 2× steps from the encoder's
    last grid), skin and hair 64×64 (five 2× steps from 2×2)."""
    top = encoder_widths(name, width)[-1]
    h, w = (d >> DOWNS[name] for d in crop_hw)
    ups = [out] * (2 if DOWNS[name] == 4 else 5)
    return LatentDecoder(latent, (top, h, w), ups, norm, rgb=False)


def image_decoder(name: str, crop_hw: tuple[int, int], width: int, latent: int, norm: str) -> LatentDecoder:
    """Latent -> the crop itself (for the local loss only): 512-256-128-64-64 (eyes, mouth) or 512 ×4 then
    256-128-64 (skin, hair), then RGB."""
    top = encoder_widths(name, width)[-1]
    h, w = (d >> DOWNS[name] for d in crop_hw)
    ups = [top // 2, top // 4, top // 8, top // 8] if DOWNS[name] == 4 else [top] * 4 + [top // 2, top // 4, top // 8]
    return LatentDecoder(latent, (top, h, w), ups, norm, rgb=True)


class PaperMaskEncoder(nn.Module):
    """E_m: one-hot mask (19, 256, 256) -> (C, 64, 64): reflect-pad 7×7 conv, two 3×3 stride-2 convs."""

    def __init__(self, classes: int, out: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(classes, out // 4, 7), norm_layer(norm, out // 4), nn.ReLU(True),
            nn.Conv2d(out // 4, out // 2, 3, 2, 1), norm_layer(norm, out // 2), nn.ReLU(True),
            nn.Conv2d(out // 2, out, 3, 2, 1), norm_layer(norm, out), nn.ReLU(True))

    def forward(self, onehot: torch.Tensor) -> torch.Tensor:
        return self.body(onehot)


class _Res(nn.Module):
    def __init__(self, c: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), norm_layer(norm, c), nn.ReLU(True),
                                  nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), norm_layer(norm, c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class PaperGenerator(nn.Module):
    """G_m: the fused grid (mask feature + five component maps) -> a feature map at full resolution: 1×1 conv,
    residual blocks, two ConvTranspose 2× steps."""

    def __init__(self, cin: int, width: int, blocks: int, out: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(cin, width, 1), norm_layer(norm, width), nn.ReLU(True),
                                  *[_Res(width, norm) for _ in range(blocks)],
                                  _up(width, width // 2, norm), _up(width // 2, out, norm))

    def forward(self, fused: torch.Tensor) -> torch.Tensor:
        return self.body(fused)


class PaperBackgroundEncoder(nn.Module):
    """E_b: the whole target image -> a full-resolution feature map (reflect-pad 7×7 conv, norm, ReLU)."""

    def __init__(self, out: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(3, out, 7), norm_layer(norm, out), nn.ReLU(True))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.body(image)


class PaperFuser(nn.Module):
    """G_b: concat(G_m's map, E_b's map) -> 1×1 conv -> reflect-pad 7×7 conv to RGB -> tanh."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(2 * width, width, 1), nn.ReflectionPad2d(3), nn.Conv2d(width, 3, 7),
                                  nn.Tanh())

    def forward(self, foreground: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([foreground, background], 1))


def paper_offsets(centres: torch.Tensor, map_hw: tuple[int, int], grid: int) -> torch.Tensor:
    """(N, 2) image-pixel (x, y) centres -> (N, 2) top-left (x0, y0) of a (h, w) map on the grid: with
    g = int(c / 4 + 0.5), the map fills [g - h/2, g + h/2) (kept inside the grid)."""
    h, w = map_hw
    g = torch.floor(centres / 4 + 0.5)
    top_left = g - centres.new_tensor([w // 2, h // 2])
    return torch.minimum(torch.clamp(top_left, min=0.0), centres.new_tensor([grid - w, grid - h]))


def init_normal(module: nn.Module) -> None:
    """The authors' initialisation: conv weights N(0, 0.02); norm weights N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
