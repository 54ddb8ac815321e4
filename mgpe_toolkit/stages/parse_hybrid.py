"""Parser `hybrid`: the learned parser's mask with the face mesh's polygons for the eyes.

The default before the parser's calibration (train/calibrate.py): the class-weighted network drew eyes too large, and
the mesh's eyes scored better on held-out CelebAMask-HQ portraits (F1 0.75 / 0.73 against 0.74 / 0.74). The
calibrated network draws them better than the mesh (0.77 / 0.76 against 0.75 / 0.73, models/parser-real/README.md),
so `unet` is the default now; `hybrid` stays for masks whose eyes must follow the mesh exactly. It costs the U-Net
plus one face-mesh pass (no selfie model), run in a thread beside the U-Net. Where the U-Net sees hair over an eye
(a fringe), hair stays; where the mesh finds no face, the U-Net's mask is returned as it is.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import NoFaceError
from ..labels import LABEL_INDEX
from ..types import FaceMask
from .parse_unet import FACE, UNetParser

MESH_PARTS = ("l_eye", "r_eye")  # what the mesh draws; the network draws everything else
PARTS = tuple(LABEL_INDEX[n] for n in MESH_PARTS)


class HybridParser:
    name = "hybrid"

    def __init__(self, weights: str | Path | None = None, device: str = "cpu", **unet_options):
        """unet_options go to the U-Net (`UNetParser`: threads, precision, mirror, refine)."""
        from .parse_mesh import MeshParser

        self.unet = UNetParser(weights, device, **unet_options)
        self.path = self.unet.path
        self.mesh = MeshParser()
        self._beside = None  # one thread: the mesh runs there while onnxruntime runs the U-Net

    def parse(self, image: np.ndarray) -> FaceMask:
        from concurrent.futures import ThreadPoolExecutor

        from .parse_mesh import _face_width, _parts

        if self._beside is None:
            self._beside = ThreadPoolExecutor(1, thread_name_prefix="mgpe-mesh")
        seen = self._beside.submit(self.mesh.observe, image, False)
        labels = self.unet.parse(image).labels
        try:
            mesh = seen.result().mesh
        except NoFaceError:
            return FaceMask(labels=labels, parser=self.name)
        out = labels.copy()
        face = np.isin(labels, FACE)
        out[np.isin(labels, PARTS)] = LABEL_INDEX["skin"]
        for name, part in _parts(mesh, labels.shape, _face_width(mesh)).items():
            if name in MESH_PARTS:
                out[part & face] = LABEL_INDEX[name]
        return FaceMask(labels=out, parser=self.name)

    def close(self) -> None:
        if self._beside is not None:
            self._beside.shutdown()
            self._beside = None
