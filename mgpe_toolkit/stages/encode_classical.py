"""Classical `encode`: a component's code is its pixels, its region and its colour statistics (no weights).

With the classical generator these codes are warped onto a target mask; `mix` builds the codes of a transfer,
where hair and lips keep the target's own pixels and take the source's colours (histogram matching), while
skin (beard) and eyes (make-up) take the source's pixels.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..labels import COMPONENTS, component_center, component_mask
from ..types import ComponentCodes, FaceMask

RECOLOUR = ("hair", "mouth")  # transferred by colour statistics; the rest by pixels
# The labels whose colours a recolouring takes and gives: lips, not the teeth and mouth inside them (the
# colours of an open smile would whiten closed lips).
COLOUR_LABELS = {"mouth": ("u_lip", "l_lip")}


def core_of(region: np.ndarray, least: int = 50) -> np.ndarray:
    """`region` less its outer pixel (which mixes in the neighbours' colours), unless too little would be left."""
    import cv2

    core = cv2.erode(region.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return core if core.sum() >= least else region


def colour_pixels(image: np.ndarray, labels: np.ndarray, name: str) -> np.ndarray:
    """(K, 3) Lab pixels that give component `name` its colour statistics: its colour region, less the outer
    pixel where that region's outline is a band of its neighbour's (COLOUR_LABELS: lips)."""
    region = colour_region(labels, name)
    return lab_pixels(image, core_of(region) if name in COLOUR_LABELS else region)


def colour_region(labels: np.ndarray, name: str) -> np.ndarray:
    """The pixels of component `name` that carry its colour (see COLOUR_LABELS); the whole component if none."""
    from ..labels import LABEL_INDEX

    region = component_mask(labels, name)
    if name in COLOUR_LABELS:
        own = np.isin(labels, [LABEL_INDEX[n] for n in COLOUR_LABELS[name]])
        if own.sum() >= 10:
            return own
    return region


@dataclass
class PatchCode:
    image: np.ndarray  # (S, S, 3) uint8: the whole aligned face the component comes from
    region: np.ndarray  # (S, S) bool: the component's pixels
    anchors: np.ndarray  # (3, 2): left eye, right eye and mouth centres of that face
    lab: np.ndarray  # (K, 3) float32 Lab pixels that carry the component's colour (colour_pixels)
    colour_from: "PatchCode | None" = None  # impose these colour statistics on this component's own pixels
    # The target's own component (a swap): where this code, warped, leaves the target's region bare, the target's
    # pixels are taken there, recoloured like this code.
    under: "PatchCode | None" = None
    # A swap's dense correspondence: the face mesh of this code's face and of the target's, in aligned pixels (N, 2)
    # each; the skin is then warped piecewise along it instead of by one similarity.
    mesh_to: "tuple[np.ndarray, np.ndarray] | None" = None


def anchors_of(mask: np.ndarray) -> np.ndarray:
    return np.array([component_center(mask, n) for n in ("left_eye", "right_eye", "mouth")], np.float64)


def lab_pixels(image: np.ndarray, region: np.ndarray) -> np.ndarray:
    import cv2

    lab = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB).astype(np.float32)
    return lab[region]


_MESH: list = []  # one face-mesh graph for every swap of the process


def face_mesh(image: np.ndarray) -> np.ndarray | None:
    """The face mesh of an aligned face in its pixels (N, 2), or None where the mesh finds none (or mediapipe is
    not installed): the swap then keeps its similarity."""
    from ..errors import NoFaceError

    try:
        if not _MESH:
            from .parse_mesh import MeshParser

            _MESH.append(MeshParser())
        return _MESH[0].observe(image, person=False).mesh
    except (ImportError, NoFaceError):
        return None


class ClassicalEncoder:
    name = "classical"

    def encode(self, image: np.ndarray, mask: FaceMask) -> ComponentCodes:
        labels = mask.labels
        if image.shape[:2] != labels.shape:
            raise ValueError(f"image {image.shape[:2]} and mask {labels.shape} differ in size")
        anchors = anchors_of(labels)
        codes = {}
        for name in COMPONENTS:
            region = component_mask(labels, name)
            codes[name] = PatchCode(image, region, anchors, colour_pixels(image, labels, name))
        return ComponentCodes(codes=codes, mask=mask, encoder=self.name)

    def swap_codes(self, source: ComponentCodes, target: ComponentCodes) -> ComponentCodes:
        """Codes of a swap: the source's, with the target's own hair beneath the source's. A hairstyle's
        structure is its strands: where the source's hair does not reach (a short cut onto long hair, hair under
        a hat), the target's strands in the source's colours read as hair, colour spread from the edge does not."""
        codes = dict(source.codes)
        if target.codes["hair"].region.any():
            codes["hair"] = replace(codes["hair"], under=target.codes["hair"])
        skin_s, skin_t = source.codes["skin"], target.codes["skin"]
        if skin_s.image is not skin_t.image and skin_s.image.shape == skin_t.image.shape:
            meshes = face_mesh(skin_s.image), face_mesh(skin_t.image)
            if meshes[0] is not None and meshes[1] is not None:
                codes["skin"] = replace(skin_s, mesh_to=meshes)
        return ComponentCodes(codes=codes, mask=source.mask, encoder=self.name)

    def mix(self, target: ComponentCodes, source: ComponentCodes, names: list[str]) -> ComponentCodes:
        """Codes of `target` with the named components' appearance from `source`."""
        codes = dict(target.codes)
        for name in names:
            src = source.codes[name]
            codes[name] = replace(codes[name], colour_from=src) if name in RECOLOUR else src
        return ComponentCodes(codes=codes, mask=target.mask, encoder=self.name)
