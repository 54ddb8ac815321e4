"""The learned stages (`mgpe` encode / generate / fuse): the paper's networks from one weights file, loaded once
per file and device, and the conversions between uint8 images / label masks and the networks' tensors."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ..types import ComponentCodes, FaceMask
from ..weights import generator_problem, load_generator, resolve_generator

weights_problem = generator_problem  # registry check: None when weights can be found


@lru_cache(maxsize=4)
def framework(path: Path, device: str = "cpu"):
    return load_generator(path, device)


def to_tensor(image: np.ndarray, size: int):
    import cv2
    import torch

    if image.shape[0] != size:
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR)
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float().div(127.5).sub(1)


def mask_at(labels: np.ndarray, size: int) -> np.ndarray:
    import cv2

    return labels if labels.shape[0] == size else cv2.resize(labels, (size, size), interpolation=cv2.INTER_NEAREST)


def to_image(t, size: int) -> np.ndarray:
    import cv2

    img = ((t[0].detach().float().clamp(-1, 1).permute(1, 2, 0).cpu().numpy() + 1) * 127.5 + 0.5).astype(np.uint8)
    return img if img.shape[0] == size else cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC)


class _Learned:
    name = "mgpe"

    def __init__(self, weights: str | None = None, device: str = "cpu"):
        self.path, self.device = resolve_generator(weights), device
        self.net = framework(self.path, device)

    @property
    def resolution(self) -> int:
        """The side the networks render at (results of larger faces are upscaled from it)."""
        return self.net.config.resolution


class LearnedEncoder(_Learned):
    """E_local: one encoder per component."""

    def encode(self, image: np.ndarray, mask: FaceMask) -> ComponentCodes:
        import torch

        from ..nets.inputs import centres_of, component_crops, dilate_components, input_spec

        res = self.resolution
        spec = input_spec(self.net.config)
        labels = dilate_components(mask_at(mask.labels, res), spec["dilate"])
        x = to_tensor(image, res).to(self.device)
        m = torch.from_numpy(labels)[None].to(self.device)
        with torch.no_grad():
            codes = self.net.encode(component_crops(x, m, centres_of(labels[None]), masked_mouth=spec["masked_mouth"]))
        return ComponentCodes(codes={n: mu for n, (mu, _) in codes.items()}, mask=mask, encoder=self.name)


class LearnedGenerator(_Learned):
    """E_m on the target mask, component features placed at its centres, G_m."""

    def generate(self, codes: ComponentCodes, target: FaceMask) -> np.ndarray:
        import torch

        from ..nets.framework import onehot
        from ..nets.inputs import centres_of, dilate_components

        res = self.resolution
        labels = dilate_components(mask_at(target.labels, res), self.net.config.dilate)
        m = torch.from_numpy(labels)[None].to(self.device)
        centres = torch.from_numpy(centres_of(labels[None])).to(self.device)
        with torch.no_grad():
            fg = self.net.generate(codes.codes, onehot(m), centres)
        if self.net.foreground_channels != 3:  # the paper arch: a feature map for its own fuser, (S, S, C) float32
            return fg[0].float().permute(1, 2, 0).cpu().numpy()
        return to_image(fg, target.labels.shape[0])


class LearnedFuser(_Learned):
    """The background-fusing sub-network: E_b on the target with the face removed, then G_b."""

    def fuse(self, foreground: np.ndarray, background: np.ndarray, target: FaceMask,
             background_mask: FaceMask | None = None) -> np.ndarray:
        import torch

        from ..nets.inputs import foreground_region

        res = self.resolution
        m = torch.from_numpy(mask_at(target.labels, res))[None].to(self.device)
        if foreground.dtype == np.uint8:
            fg = to_tensor(foreground, res)
        else:  # the paper arch's generator gives a feature map (S, S, C), not an image
            fg = torch.from_numpy(np.ascontiguousarray(foreground)).permute(2, 0, 1)[None]
        with torch.no_grad():
            out = self.net.fuse(fg.to(self.device), to_tensor(background, res).to(self.device), foreground_region(m))
        return to_image(out, target.labels.shape[0])
