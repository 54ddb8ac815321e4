"""Learned `encode`: the local embedding sub-network E_local (one encoder per component)."""
from __future__ import annotations

import numpy as np

from ..types import ComponentCodes, FaceMask
from . import _framework as fw


class LearnedEncoder:
    name = "mgpe"

    def __init__(self, weights: str | None = None, device: str = "cpu"):
        self.path, self.device = fw.resolve(weights), device
        self.net = fw.framework(self.path, device)

    def encode(self, image: np.ndarray, mask: FaceMask) -> ComponentCodes:
        import torch

        from ..nets.inputs import centres_of, component_crops

        from ..nets.inputs import dilate_components, input_spec

        res = self.net.config.resolution
        spec = input_spec(self.net.config)
        labels = dilate_components(fw.mask_at(mask.labels, res), spec["dilate"])
        x = fw.to_tensor(image, res).to(self.device)
        m = torch.from_numpy(labels)[None].to(self.device)
        with torch.no_grad():
            codes = self.net.encode(component_crops(x, m, centres_of(labels[None]), masked_mouth=spec["masked_mouth"]))
        return ComponentCodes(codes={n: mu for n, (mu, _) in codes.items()}, mask=mask, encoder=self.name)
