"""Parser `hybrid`: the learned parser's hair, skin, ears, neck, clothes and backdrop, with the face mesh's
polygons for the small parts (brows, eyes, nose, lips, inner mouth), which the mesh places to a pixel.

It costs the U-Net plus one face-mesh pass. Where the U-Net sees hair over a brow (a fringe) or over the face,
hair stays; where the mesh finds no face, the U-Net's mask is returned as it is.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import NoFaceError
from ..labels import LABEL_INDEX
from ..types import FaceMask
from .parse_unet import FACE, UNetParser

PARTS = tuple(LABEL_INDEX[n] for n in ("nose", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip"))


class HybridParser:
    name = "hybrid"

    def __init__(self, weights: str | Path | None = None, device: str = "cpu"):
        from .parse_mesh import MeshParser

        self.unet = UNetParser(weights, device)
        self.mesh = MeshParser()

    def parse(self, image: np.ndarray) -> FaceMask:
        from .parse_mesh import _face_width, _parts

        labels = self.unet.parse(image).labels
        try:
            mesh = self.mesh.observe(image).mesh
        except NoFaceError:
            return FaceMask(labels=labels, parser=self.name)
        out = labels.copy()
        face = np.isin(labels, FACE)
        out[np.isin(labels, PARTS)] = LABEL_INDEX["skin"]
        for name, part in _parts(mesh, labels.shape, _face_width(mesh)).items():
            out[part & face] = LABEL_INDEX[name]
        return FaceMask(labels=out, parser=self.name)

    def close(self) -> None:
        self.mesh.close()
