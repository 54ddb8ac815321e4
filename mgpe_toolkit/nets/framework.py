"""The paper's whole generator G(x_s, m_s, x_t, m_t): local embedding -> mask-guided generation -> background
fusing."""
from __future__ import annotations

import torch
from torch import nn

from ..labels import COMPONENTS
from .config import GANConfig
from .fusion import BackgroundEncoder, BackgroundFuser
from .generator import NUM_CLASSES, ForegroundGenerator, MaskEncoder, place
from .inputs import COMPONENT_NAMES, FULL, PLACED
from .local import ComponentDecoder, ComponentEncoder


def onehot(masks: torch.Tensor) -> torch.Tensor:
    """(N, S, S) int labels -> (N, 19, S, S) float."""
    return torch.nn.functional.one_hot(masks.long(), NUM_CLASSES).permute(0, 3, 1, 2).float()


class MaskGuidedFramework(nn.Module):
    """G(x_s, m_s, x_t, m_t) of either arch. encode: crops -> {component: (mu, logvar or None)}; generate:
    features (lean: spatial maps; paper: latent vectors) on a target mask -> foreground (lean: RGB; paper: a
    feature map); fuse: foreground + target image -> the final image in [-1, 1]."""

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        c = config
        if c.arch == "paper":
            self._build_paper(c)
        else:
            self.encoders = nn.ModuleDict({n: ComponentEncoder(c.comp_channels, c.comp_width, c.norm, c.vae)
                                           for n in COMPONENT_NAMES})
            self.decoders = nn.ModuleDict({n: ComponentDecoder(c.comp_channels, c.comp_width, c.norm)
                                           for n in COMPONENT_NAMES})
            self.mask_encoder = MaskEncoder(c.mask_channels, c.norm)
            self.generator = ForegroundGenerator(c.mask_channels + len(COMPONENT_NAMES) * c.comp_channels,
                                                 c.gen_channels, c.gen_blocks, c.norm)
            self.bg_encoder = BackgroundEncoder(c.bg_channels, c.norm)
            self.fuser = BackgroundFuser(c.bg_channels, c.bg_blocks, c.norm)
        if c.init == "normal":
            from .paper import init_normal

            init_normal(self)

    def _build_paper(self, c: GANConfig) -> None:
        from . import paper as P

        # The Table 1 ablation `embedding=global`: one auto-encoder of the whole face and hair (a full-image
        # component like skin) instead of five.
        names = COMPONENT_NAMES if c.embedding == "local" else ("face",)
        hw = {n: COMPONENTS["skin" if n == "face" else n].crop_size(c.resolution)[::-1] for n in names}
        kind = {n: "skin" if n == "face" else n for n in names}
        self.encoders = nn.ModuleDict({n: P.VAEComponentEncoder(kind[n], hw[n], c.comp_width, c.latent, c.norm)
                                       for n in names})
        self.feature_decoders = nn.ModuleDict({n: P.feature_decoder(kind[n], hw[n], c.comp_width, c.latent,
                                                                    c.comp_channels, c.norm) for n in names})
        self.decoders = nn.ModuleDict({n: P.image_decoder(kind[n], hw[n], c.comp_width, c.latent, c.norm)
                                       for n in names})
        self.mask_encoder = P.PaperMaskEncoder(NUM_CLASSES, c.mask_channels, c.norm)
        self.generator = P.PaperGenerator(c.mask_channels + len(names) * c.comp_channels, c.gen_channels,
                                          c.gen_blocks, c.bg_channels, c.norm)
        if c.fusion == "net":
            self.bg_encoder = P.PaperBackgroundEncoder(c.bg_channels, c.norm)
            self.fuser = P.PaperFuser(c.bg_channels)
        else:  # pasted background: G_m's map straight to RGB
            self.to_rgb = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(c.bg_channels, 3, 7), nn.Tanh())

    @property
    def components(self) -> tuple[str, ...]:
        return tuple(self.encoders)

    def feature_shape(self, name: str) -> tuple[int, ...]:
        """Shape of one sample's feature of a component, as encode gives it."""
        c = self.config
        if c.arch == "paper":
            return (c.latent,)
        w, h = COMPONENTS[name].crop_size(c.resolution)
        return (c.comp_channels, h // 4, w // 4)

    @property
    def foreground_channels(self) -> int:
        return self.config.bg_channels if self.config.arch == "paper" else 3

    def encode(self, crops: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
        return {n: self.encoders[n](crops[n]) for n in self.components}

    def generate(self, features: dict[str, torch.Tensor], target_onehot: torch.Tensor,
                 target_centres: torch.Tensor) -> torch.Tensor:
        """Foreground from component features placed on the target mask. centres: (N, 3, 2) image px."""
        res = self.config.resolution
        if self.config.arch == "paper":
            return self._generate_paper(features, target_onehot, target_centres)
        placed = [place(features[n], target_centres[:, k], COMPONENTS[n].crop_size(res), res)
                  for k, n in enumerate(PLACED)]
        fused = torch.cat([self.mask_encoder(target_onehot), *placed, *(features[n] for n in FULL)], 1)
        return self.generator(fused)

    def _generate_paper(self, features, target_onehot, target_centres) -> torch.Tensor:
        from .generator import place_at
        from .paper import paper_offsets

        grid = self.config.resolution // 4
        maps = []
        for n in self.components:
            m = self.feature_decoders[n](features[n])
            if n in PLACED:  # its own zero map, the decoded map placed at the target's centre
                k = PLACED.index(n)
                m = place_at(m, paper_offsets(target_centres[:, k].float(), tuple(m.shape[-2:]), grid), grid)
            maps.append(m)
        return self.generator(torch.cat([self.mask_encoder(target_onehot), *maps], 1))

    def fuse(self, foreground: torch.Tensor, target_image: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
        if self.config.arch == "paper":
            if self.config.fusion == "paste":
                return self.to_rgb(foreground) * removed + target_image * (1 - removed)
            return self.fuser(foreground, self.bg_encoder(target_image) * (1 - removed))
        background = target_image * (1 - removed)
        return self.fuser(foreground, self.bg_encoder(background, removed), background, removed)

    def forward(self, crops: dict[str, torch.Tensor], target_onehot: torch.Tensor, target_centres: torch.Tensor,
                target_image: torch.Tensor, removed: torch.Tensor):
        codes = self.encode(crops)
        feats = {n: mu for n, (mu, _) in codes.items()}
        fg = self.generate(feats, target_onehot, target_centres)
        return self.fuse(fg, target_image, removed), fg
