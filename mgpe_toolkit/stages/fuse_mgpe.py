"""Learned `fuse`: the background-fusing sub-network (E_b on the target with the face removed, then G_b)."""
from __future__ import annotations

import numpy as np

from ..types import FaceMask
from . import _framework as fw


class LearnedFuser:
    name = "mgpe"

    def __init__(self, weights: str | None = None, device: str = "cpu"):
        self.path, self.device = fw.resolve(weights), device
        self.net = fw.framework(self.path, device)

    def fuse(self, foreground: np.ndarray, background: np.ndarray, target: FaceMask,
             background_mask: FaceMask | None = None) -> np.ndarray:
        import torch

        from ..nets.inputs import foreground_region

        res = self.net.config.resolution
        m = torch.from_numpy(fw.mask_at(target.labels, res))[None].to(self.device)
        if foreground.dtype == np.uint8:
            fg = fw.to_tensor(foreground, res)
        else:  # the paper arch's generator gives a feature map (S, S, C), not an image
            fg = torch.from_numpy(np.ascontiguousarray(foreground)).permute(2, 0, 1)[None]
        with torch.no_grad():
            out = self.net.fuse(fg.to(self.device),
                                fw.to_tensor(background, res).to(self.device), foreground_region(m))
        return fw.to_image(out, target.labels.shape[0])
