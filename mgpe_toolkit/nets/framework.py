"""The paper's whole generator G(x_s, m_s, x_t, m_t): local embedding -> mask-guided generation -> background
fusing. Also the tensor-side helpers that turn label masks into what the networks take."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..labels import COMPONENTS, component_center, crop_box
from .config import GANConfig
from .fusion import BackgroundEncoder, BackgroundFuser
from .generator import NUM_CLASSES, ForegroundGenerator, MaskEncoder, place
from .local import ComponentDecoder, ComponentEncoder

COMPONENT_NAMES = tuple(COMPONENTS)  # left_eye, right_eye, mouth, skin, hair
PLACED = tuple(n for n in COMPONENT_NAMES if COMPONENTS[n].crop_256 is not None)  # eyes and mouth
FULL = tuple(n for n in COMPONENT_NAMES if COMPONENTS[n].crop_256 is None)  # skin and hair
_FOREGROUND = torch.zeros(256, dtype=torch.bool)
for _name in COMPONENT_NAMES:
    _FOREGROUND[list(COMPONENTS[_name].indices)] = True


def onehot(masks: torch.Tensor) -> torch.Tensor:
    """(N, S, S) int labels -> (N, 19, S, S) float."""
    return torch.nn.functional.one_hot(masks.long(), NUM_CLASSES).permute(0, 3, 1, 2).float()


def foreground_region(masks: torch.Tensor) -> torch.Tensor:
    """(N, 1, S, S) float: 1 on the five components (what the fusing net repaints), 0 on the background."""
    return _FOREGROUND.to(masks.device)[masks.long()].unsqueeze(1).float()


def centres_of(masks: np.ndarray) -> np.ndarray:
    """(N, 3, 2) float32 image-pixel centres of eyes and mouth (template fallback when absent)."""
    return np.array([[component_center(m, name) for name in PLACED] for m in masks], np.float32)


def component_crops(images: torch.Tensor, masks: torch.Tensor, centres: np.ndarray) -> dict[str, torch.Tensor]:
    """The five inputs of the local embedding: fixed windows for eyes and mouth, masked full images for skin/hair."""
    n, _, s, _ = images.shape
    crops = {}
    for k, name in enumerate(PLACED):
        w, h = COMPONENTS[name].crop_size(s)
        boxes = [crop_box(tuple(centres[i, k]), (w, h), (s, s)) for i in range(n)]
        crops[name] = torch.stack([images[i, :, y0:y1, x0:x1] for i, (x0, y0, x1, y1) in enumerate(boxes)])
    for name in FULL:
        keep = torch.zeros(256, dtype=torch.bool)
        keep[list(COMPONENTS[name].indices)] = True
        region = keep.to(masks.device)[masks.long()].unsqueeze(1)
        crops[name] = torch.where(region, images, torch.zeros_like(images))
    return crops


def edit_inputs(images: list[np.ndarray], masks: list[np.ndarray], targets: list[np.ndarray], size: int):
    """What the learned stages take for a batch of aligned faces: crops of `images` (uint8 RGB) under their own
    `masks`, and `targets` (edited masks) as the masks to paint. Everything is brought to `size` first.
    Returns (crops, target one-hot, target centres, removal mask, target images), numpy, images in [-1, 1]."""
    import cv2

    def img(a):
        if a.shape[0] != size:
            a = cv2.resize(a, (size, size), interpolation=cv2.INTER_AREA if a.shape[0] > size else cv2.INTER_LINEAR)
        return a.astype(np.float32) / 127.5 - 1

    def lab(m):
        return m if m.shape[0] == size else cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST)

    x = np.ascontiguousarray(np.stack([img(a) for a in images]).transpose(0, 3, 1, 2))
    src = np.stack([lab(m) for m in masks])
    crops = component_crops(torch.from_numpy(x), torch.from_numpy(src), centres_of(src))
    tgt = np.stack([lab(m) for m in targets])
    one = np.eye(NUM_CLASSES, dtype=np.float32)[tgt].transpose(0, 3, 1, 2)
    removed = foreground_region(torch.from_numpy(tgt)).numpy()
    return {n: c.numpy() for n, c in crops.items()}, one, centres_of(tgt), removed, x


class MaskGuidedFramework(nn.Module):
    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        c = config
        self.encoders = nn.ModuleDict({n: ComponentEncoder(c.comp_channels, c.comp_width, c.norm, c.vae)
                                       for n in COMPONENT_NAMES})
        self.decoders = nn.ModuleDict({n: ComponentDecoder(c.comp_channels, c.comp_width, c.norm)
                                       for n in COMPONENT_NAMES})
        self.mask_encoder = MaskEncoder(c.mask_channels, c.norm)
        self.generator = ForegroundGenerator(c.mask_channels + len(COMPONENT_NAMES) * c.comp_channels,
                                             c.gen_channels, c.gen_blocks, c.norm)
        self.bg_encoder = BackgroundEncoder(c.bg_channels, c.norm)
        self.fuser = BackgroundFuser(c.bg_channels, c.bg_blocks, c.norm)

    def encode(self, crops: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
        return {n: self.encoders[n](crops[n]) for n in COMPONENT_NAMES}

    def generate(self, features: dict[str, torch.Tensor], target_onehot: torch.Tensor,
                 target_centres: torch.Tensor) -> torch.Tensor:
        """Foreground face from component features placed on the target mask. centres: (N, 3, 2) image px."""
        res = self.config.resolution
        placed = [place(features[n], target_centres[:, k], COMPONENTS[n].crop_size(res), res)
                  for k, n in enumerate(PLACED)]
        fused = torch.cat([self.mask_encoder(target_onehot), *placed, *(features[n] for n in FULL)], 1)
        return self.generator(fused)

    def fuse(self, foreground: torch.Tensor, target_image: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
        background = target_image * (1 - removed)
        return self.fuser(foreground, self.bg_encoder(background, removed), background, removed)

    def forward(self, crops: dict[str, torch.Tensor], target_onehot: torch.Tensor, target_centres: torch.Tensor,
                target_image: torch.Tensor, removed: torch.Tensor):
        codes = self.encode(crops)
        feats = {n: mu for n, (mu, _) in codes.items()}
        fg = self.generate(feats, target_onehot, target_centres)
        return self.fuse(fg, target_image, removed), fg
