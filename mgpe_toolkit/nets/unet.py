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


def widened(net: UNet, base: int, seed: int = 0) -> UNet:
    """The same function as `net` with `base` channels at full resolution (Net2WiderNet, Chen et al. 2016): each
    new channel copies an old one of its layer, and the layers reading a copied channel split its old weight
    among the copies in random shares that sum to one, so the copies learn apart. Outputs match `net`'s in
    eval and train mode (batch statistics of a copy are its original's)."""
    from dataclasses import replace

    old = net.config
    if base < old.base:
        raise ValueError(f"cannot widen a base-{old.base} U-Net to base {base}")
    new = UNet(replace(old, base=base))
    g = torch.Generator().manual_seed(seed)

    def channels(c_old: int, c_new: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(the old channel each new channel copies, the share of it a reader gives this copy)."""
        src = torch.cat([torch.arange(c_old), torch.randint(c_old, (c_new - c_old,), generator=g)])
        w = torch.rand(c_new, generator=g) + 0.5
        return src, w / torch.zeros(c_old).index_add_(0, src, w)[src]

    def same(c: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.arange(c), torch.ones(c)

    def cat(a, b, c_a_old: int):
        return torch.cat([a[0], b[0] + c_a_old]), torch.cat([a[1], b[1]])

    @torch.no_grad()
    def copy(src: nn.Sequential | nn.Conv2d, dst, inp, out) -> None:
        """A conv (+ norm) layer: rows chosen by `out`'s sources, input columns by `inp`'s, scaled by its shares."""
        conv_s, conv_d = (src, dst) if isinstance(src, nn.Conv2d) else (src[0], dst[0])
        conv_d.weight.copy_(conv_s.weight[out[0]][:, inp[0]] * inp[1][None, :, None, None])
        if conv_s.bias is not None:
            conv_d.bias.copy_(conv_s.bias[out[0]])
        if isinstance(src, nn.Sequential):
            for name, t in src[1].state_dict().items():
                t_d = dst[1].state_dict()[name]
                t_d.copy_(t[out[0]] if t.dim() else t)

    c_old = [old.base * 2 ** i for i in range(old.depth + 1)]
    c_new = [base * 2 ** i for i in range(old.depth + 1)]
    x = channels(c_old[0], c_new[0])
    copy(net.stem[0], new.stem[0], same(3), x)
    skips = [channels(c_old[0], c_new[0])]
    copy(net.stem[1], new.stem[1], x, skips[0])
    for i, (d_old, d_new) in enumerate(zip(net.down, new.down)):
        x = channels(c_old[i + 1], c_new[i + 1])
        copy(d_old[0], d_new[0], skips[-1], x)
        skips.append(channels(c_old[i + 1], c_new[i + 1]))
        copy(d_old[1], d_new[1], x, skips[-1])
    y = skips.pop()
    for m_old, m_new, i in zip(net.merge, new.merge, reversed(range(old.depth))):
        x = channels(c_old[i], c_new[i])
        copy(m_old[0], m_new[0], cat(y, skips.pop(), c_old[i + 1]), x)
        y = channels(c_old[i], c_new[i])
        copy(m_old[1], m_new[1], x, y)
    copy(net.head, new.head, y, same(old.classes))
    return new.train(net.training)
