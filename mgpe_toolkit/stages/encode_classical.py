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


def box_of(region: np.ndarray, margin: int = 1) -> tuple[slice, slice]:
    """The bounding box of `region` grown by `margin` pixels (within the image), as slices."""
    import cv2

    x, y, w, h = cv2.boundingRect(region.astype(np.uint8))
    return (slice(max(0, y - margin), y + h + margin), slice(max(0, x - margin), x + w + margin))


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


# What covers a face in a photo, and how far beside it (a share of the crop side) the skin is not trusted as skin:
# parsed outlines of hair are loose and its strands cross them; those of glasses follow the frame more closely.
COVERS = {"hair": 0.02, "hat": 0.02, "eye_g": 0.006}
# How far from the hair (a share of the side) skin pixels of the hair's colour count as its strands, not shadows.
STRAY_REACH = 0.08


def visible_skin(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The pixels of a face's skin component that show its skin: less a band beside what covers it (COVERS) and
    less the pixels labelled skin near the hair (STRAY_REACH) whose colour is nearer the hair's than the
    skin's (strands of a fringe). Where that would leave under a fifth of the skin, the whole component."""
    import cv2

    from ..labels import LABEL_INDEX

    region = component_mask(labels, "skin")
    visible = region.copy()
    for name, band in COVERS.items():
        cover = labels == LABEL_INDEX[name]
        if cover.any():
            k = 2 * max(1, round(band * labels.shape[0])) + 1
            disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
            visible &= ~cv2.dilate(cover.astype(np.uint8), disc).astype(bool)
    skin, hair = labels == LABEL_INDEX["skin"], labels == LABEL_INDEX["hair"]
    if core_of(skin).sum() > 200 and hair.sum() > 200:
        box = box_of(skin)  # skin pixels are judged; the hair's colours may come from anywhere
        lab = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB).astype(np.float32)

        def distance(px_of):  # squared Mahalanobis distance of every pixel in the box to a region's colours
            px = lab[px_of]
            inv = np.linalg.inv(np.cov(px.T) + np.eye(3))
            d = lab[box] - px.mean(0)
            return np.einsum("...i,ij,...j->...", d, inv, d)

        d_skin, d_hair = distance(core_of(skin)), distance(core_of(hair))
        reach = cv2.distanceTransform((~hair).astype(np.uint8), cv2.DIST_L2, 3) < STRAY_REACH * labels.shape[0]
        stray = np.zeros_like(skin)
        stray[box] = skin[box] & reach[box] & (d_skin > 12) & (d_hair < d_skin)
        visible &= ~cv2.dilate(stray.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return visible if visible.sum() >= 0.2 * region.sum() else region


# The outline of a parsed hair region mixes in its backdrop (a white wall, a dark coat): over this share of the
# crop side a swap takes the target's own strands instead.
HAIR_RIM = 0.012


def inner(region: np.ndarray, rim: float) -> np.ndarray:
    """`region` less its outline `rim` × side wide, unless under half of it would be left."""
    import cv2

    k = 2 * max(1, round(rim * region.shape[0])) + 1
    core = cv2.erode(region.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))).astype(bool)
    return core if core.sum() >= 0.5 * region.sum() else region


# A mouth is open when its inside (teeth, tongue) is at least this share of the mouth component.
OPEN_MOUTH = 0.15


def is_open(labels: np.ndarray) -> bool:
    from ..labels import LABEL_INDEX

    mouth = component_mask(labels, "mouth").sum()
    return bool(mouth) and (labels == LABEL_INDEX["mouth"]).sum() >= OPEN_MOUTH * mouth


def anchors_of(mask: np.ndarray) -> np.ndarray:
    return np.array([component_center(mask, n) for n in ("left_eye", "right_eye", "mouth")], np.float64)


def lab_pixels(image: np.ndarray, region: np.ndarray) -> np.ndarray:
    import cv2

    lab = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB).astype(np.float32)
    return lab[region]


_MESH: list = []  # one face-mesh graph for every swap of the process


def face_mesh(image: np.ndarray) -> np.ndarray | None:
    """The face mesh of an aligned face in its pixels (N, 2), or None where the mesh finds none (or its graphs
    are missing): the swap then keeps its similarity."""
    from ..errors import NoFaceError, UsageError

    try:
        if not _MESH:
            from .parse_mesh import MeshParser

            _MESH.append(MeshParser())
        return _MESH[0].observe(image, person=False).mesh
    except (UsageError, NoFaceError):
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
        """Codes of a swap: the source's, with the target's own hair and skin beneath the source's. A hairstyle's
        structure is its strands: where the source's hair does not reach (a short cut onto long hair, hair under
        a hat), the target's strands in the source's colours read as hair, colour spread from the edge does not.
        Likewise the skin the source's hair, hat or glasses hid (a fringe over the brows) is the target's, in the
        source's colours, and only the source's visible skin is carried (visible_skin). Where one mouth is open
        and the other closed, the target's mouth stays, with the source's lip colour (lips stretched over teeth
        read as a smear)."""
        codes = dict(source.codes)
        skin_s, skin_t = source.codes["skin"], target.codes["skin"]
        if skin_s.image is skin_t.image or skin_s.image.shape != skin_t.image.shape:  # a face onto itself
            return ComponentCodes(codes=codes, mask=source.mask, encoder=self.name)
        if is_open(source.mask.labels) != is_open(target.mask.labels):
            codes["mouth"] = replace(target.codes["mouth"], colour_from=source.codes["mouth"])
        if target.codes["hair"].region.any():
            hair = codes["hair"]
            codes["hair"] = replace(hair, region=inner(hair.region, HAIR_RIM), under=target.codes["hair"])
        codes["skin"] = self._skin_onto(skin_s, source, skin_t)
        return ComponentCodes(codes=codes, mask=source.mask, encoder=self.name)

    @staticmethod
    def _skin_onto(code: PatchCode, codes: ComponentCodes, under: PatchCode) -> PatchCode:
        """A skin code (of `codes`' face) for another face's skin: cut to the skin its face shows, over that face's
        own skin (`under`), warped along both face meshes where both are found."""
        if under.region.any():
            code = replace(code, region=visible_skin(code.image, codes.mask.labels), under=under)
        meshes = face_mesh(code.image), face_mesh(under.image)
        return code if meshes[0] is None or meshes[1] is None else replace(code, mesh_to=meshes)

    def mix(self, target: ComponentCodes, source: ComponentCodes, names: list[str]) -> ComponentCodes:
        """Codes of `target` with the named components' appearance from `source`."""
        codes = dict(target.codes)
        for name in names:
            src = source.codes[name]
            if name in RECOLOUR:
                codes[name] = replace(codes[name], colour_from=src)
            elif name == "skin" and src.image is not codes[name].image and src.image.shape == codes[name].image.shape:
                codes[name] = self._skin_onto(src, source, codes[name])  # a beard, not the fringe over it
            else:
                codes[name] = src
        return ComponentCodes(codes=codes, mask=target.mask, encoder=self.name)
