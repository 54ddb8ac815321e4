"""Learned `generate`: E_m on the target mask, component features placed at its centres, G_m."""
from __future__ import annotations

import numpy as np

from ..types import ComponentCodes, FaceMask
from . import _framework as fw


class LearnedGenerator:
    name = "mgpe"

    def __init__(self, weights: str | None = None, device: str = "cpu"):
        self.path, self.device = fw.resolve(weights), device
        self.net = fw.framework(self.path, device)

    def generate(self, codes: ComponentCodes, target: FaceMask) -> np.ndarray:
        import torch

        from ..nets.framework import onehot
        from ..nets.inputs import centres_of, dilate_components

        res = self.net.config.resolution
        labels = dilate_components(fw.mask_at(target.labels, res), self.net.config.dilate)
        m = torch.from_numpy(labels)[None].to(self.device)
        centres = torch.from_numpy(centres_of(labels[None])).to(self.device)
        with torch.no_grad():
            fg = self.net.generate(codes.codes, onehot(m), centres)
        if self.net.foreground_channels != 3:  # the paper arch: a feature map for its own fuser, (S, S, C) float32
            return fg[0].float().permute(1, 2, 0).cpu().numpy()
        return fw.to_image(fg, target.labels.shape[0])
