"""The one label table (CelebAMask-HQ order), its colours, converters to other orders, and the paper's components.

"l_"/"r_" mean the side with the smaller/larger x in the image (the viewer's left/right); masks written for
other tools take their order and side convention (to_format, MASK_FORMATS).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LABELS: tuple[str, ...] = (
    "background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
    "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
)
LABEL_INDEX: dict[str, int] = {name: i for i, name in enumerate(LABELS)}
NUM_CLASSES = len(LABELS)
# In training masks only: a pixel left out of the loss (its label is unsure).
IGNORE = 255
# In training masks only: a pixel known not to be hair, its class unknown (photos with hair masks alone).
NOT_HAIR = 254

DESCRIPTIONS: dict[str, str] = {
    "background": "everything that is not the person",
    "skin": "face skin (forehead, cheeks, chin)",
    "nose": "nose",
    "eye_g": "eyeglasses",
    "l_eye": "eye with the smaller x (viewer's left)",
    "r_eye": "eye with the larger x (viewer's right)",
    "l_brow": "brow with the smaller x",
    "r_brow": "brow with the larger x",
    "l_ear": "ear with the smaller x",
    "r_ear": "ear with the larger x",
    "mouth": "inner mouth (teeth, tongue, the gap between the lips)",
    "u_lip": "upper lip",
    "l_lip": "lower lip",
    "hair": "hair, beard excluded (beard is skin)",
    "hat": "hat or head wear",
    "ear_r": "earring",
    "neck_l": "necklace",
    "neck": "neck",
    "cloth": "clothing",
}

# The colour map commonly used for CelebAMask-HQ previews, so previews look familiar.
COLORS: np.ndarray = np.array([
    (0, 0, 0), (204, 0, 0), (76, 153, 0), (204, 204, 0), (51, 51, 255), (204, 0, 204), (0, 255, 255),
    (255, 204, 204), (102, 51, 0), (255, 0, 0), (102, 204, 0), (255, 255, 0), (0, 0, 153), (0, 0, 204),
    (255, 51, 153), (0, 204, 204), (0, 51, 0), (255, 153, 51), (0, 204, 0),
], dtype=np.uint8)

# Helen's 11 classes; its "left" is the viewer's, like ours.
HELEN_LABELS: tuple[str, ...] = (
    "background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "nose", "u_lip", "inner_mouth", "l_lip", "hair",
)
HELEN_TO_CANONICAL = ("background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "nose", "u_lip", "mouth",
                       "l_lip", "hair")
# Canonical classes Helen has no class for, and the Helen class that covers them in Helen's annotations
# (Helen's face skin stops at the face outline: ears, like the neck, are left as background; head wear is
# background too, as the headscarf of the Helen sample 4.png shows).
HELEN_FALLBACK: dict[str, str] = {
    "eye_g": "skin", "l_ear": "background", "r_ear": "background", "hat": "background",
    "ear_r": "background", "neck_l": "background", "neck": "background", "cloth": "background",
}

# The BiSeNet / face-parsing.PyTorch order.
BISENET_LABELS: tuple[str, ...] = (
    "background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r", "nose",
    "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat",
)


class LossyConversionError(ValueError):
    """A mask holds classes the target label order cannot represent."""


def _lut(pairs: dict[int, int], size: int = 256) -> np.ndarray:
    lut = np.full(size, 255, dtype=np.uint8)
    for src, dst in pairs.items():
        lut[src] = dst
    return lut


_FROM_HELEN = _lut({i: LABEL_INDEX[n] for i, n in enumerate(HELEN_TO_CANONICAL)})
_TO_HELEN = _lut({LABEL_INDEX[n]: i for i, n in enumerate(HELEN_TO_CANONICAL)}
                 | {LABEL_INDEX[c]: HELEN_TO_CANONICAL.index(h) for c, h in HELEN_FALLBACK.items()})
_FROM_BISENET = _lut({i: LABEL_INDEX[n] for i, n in enumerate(BISENET_LABELS)})
_TO_BISENET = _lut({LABEL_INDEX[n]: i for i, n in enumerate(BISENET_LABELS)})


def _apply(lut: np.ndarray, mask: np.ndarray, source: str) -> np.ndarray:
    mask = np.asarray(mask)
    out = lut[mask.astype(np.uint8, copy=False)]
    if (out == 255).any():
        bad = sorted(set(np.unique(mask[out == 255]).tolist()))
        raise ValueError(f"mask holds values {bad} that are not {source} labels")
    return out


def from_helen(mask: np.ndarray) -> np.ndarray:
    """Helen 11-class mask (H, W) -> canonical labels. Lossless."""
    return _apply(_FROM_HELEN, mask, "Helen")


def to_helen(mask: np.ndarray, *, strict: bool = True) -> np.ndarray:
    """Canonical mask -> Helen 11. With strict, classes Helen lacks (ears, neck, cloth, ...) raise;
    otherwise they map by HELEN_FALLBACK."""
    mask = np.asarray(mask)
    if strict:
        lossy = [LABELS[v] for v in np.unique(mask) if v < NUM_CLASSES and LABELS[v] in HELEN_FALLBACK]
        if lossy:
            raise LossyConversionError(f"Helen has no class for {', '.join(lossy)} (use strict=False to merge them)")
    return _apply(_TO_HELEN, mask, "canonical")


def from_bisenet(mask: np.ndarray) -> np.ndarray:
    """BiSeNet/face-parsing 19-class mask -> canonical. A permutation: lossless both ways."""
    return _apply(_FROM_BISENET, mask, "BiSeNet")


def to_bisenet(mask: np.ndarray) -> np.ndarray:
    """Canonical mask -> BiSeNet order, names kept as they are (no side swap; `to_format(mask, "bisenet")`
    also swaps sides to the subject's)."""
    return _apply(_TO_BISENET, mask, "canonical")


SIDE_PAIRS: tuple[tuple[str, str], ...] = (("l_eye", "r_eye"), ("l_brow", "r_brow"), ("l_ear", "r_ear"))

# Mask files written for other tools (`mgpe parse --format`): their label order and their side convention.
# CelebAMask-HQ names sides by the subject: its l_eye is the person's left eye, on the image's right.
# BiSeNet (face-parsing.PyTorch) is trained on CelebAMask-HQ, so its l_/r_ are the subject's sides too.
# u_lip/l_lip are upper/lower lip, not a side pair.
MASK_FORMATS: tuple[str, ...] = ("canonical", "celebamask", "bisenet")
# The class name of each value in a format's files.
FORMAT_LABELS: dict[str, tuple[str, ...]] = {"canonical": LABELS, "celebamask": LABELS, "bisenet": BISENET_LABELS}
# What l_/r_ mean in each format's files.
FORMAT_SIDES: dict[str, str] = {
    "canonical": "the viewer's left/right (smaller/larger x in the image)",
    "celebamask": "the subject's left/right (larger/smaller x in the image)",
    "bisenet": "the subject's left/right (larger/smaller x in the image), as in CelebAMask-HQ",
}
# class -> the same class on the other side (l_eye <-> r_eye ...), every other class itself; any other value
# (255 = not a label) -> 255.
SWAP_SIDES = _lut({i: i for i in range(NUM_CLASSES)}
                   | {LABEL_INDEX[a]: LABEL_INDEX[b] for pair in SIDE_PAIRS for a, b in (pair, pair[::-1])})
_TO_FORMAT = {"canonical": _lut({i: i for i in range(NUM_CLASSES)}), "celebamask": SWAP_SIDES,
              "bisenet": _TO_BISENET[SWAP_SIDES]}
# The swap is its own inverse; 255 (not a label) stays 255 through both tables.
_FROM_FORMAT = {"canonical": _TO_FORMAT["canonical"], "celebamask": SWAP_SIDES,
                "bisenet": SWAP_SIDES[_FROM_BISENET]}


def _format_table(tables: dict[str, np.ndarray], fmt: str) -> np.ndarray:
    if fmt not in tables:
        raise ValueError(f"mask format must be one of {', '.join(MASK_FORMATS)}, not {fmt!r}")
    return tables[fmt]


def to_format(mask: np.ndarray, fmt: str) -> np.ndarray:
    """Canonical mask (H, W) -> the label order and side convention of `fmt` (MASK_FORMATS). A permutation:
    lossless, undone by from_format."""
    return _apply(_format_table(_TO_FORMAT, fmt), mask, "canonical")


def from_format(mask: np.ndarray, fmt: str) -> np.ndarray:
    """A mask in `fmt`'s order and side convention -> canonical; the inverse of to_format."""
    titles = {"canonical": "canonical", "celebamask": "CelebAMask-HQ", "bisenet": "BiSeNet"}
    return _apply(_format_table(_FROM_FORMAT, fmt), mask, titles.get(fmt, fmt))


def assign_sides(mask: np.ndarray) -> np.ndarray:
    """Re-assign l_/r_ for eyes, brows and ears by centroid x, whatever the source called them.

    Datasets disagree on which side "left" is, so loaders call this instead of trusting names.
    With both parts present the one with the smaller centroid x becomes l_; a lone part is l_ when its
    centroid lies left of the face centre (skin and nose centroid, else the image centre).
    """
    mask = np.asarray(mask)
    out = mask.copy()
    face = np.isin(mask, [LABEL_INDEX["skin"], LABEL_INDEX["nose"]])
    centre_x = np.nonzero(face)[1].mean() if face.any() else (mask.shape[1] - 1) / 2
    for left_name, right_name in SIDE_PAIRS:
        left, right = LABEL_INDEX[left_name], LABEL_INDEX[right_name]
        xs_l, xs_r = np.nonzero(mask == left)[1], np.nonzero(mask == right)[1]
        if xs_l.size and xs_r.size:
            if xs_l.mean() > xs_r.mean():
                out[mask == left], out[mask == right] = right, left
        elif xs_l.size or xs_r.size:
            name = left if xs_l.size else right
            xs = xs_l if xs_l.size else xs_r
            out[mask == name] = left if xs.mean() < centre_x else right
    return out


def colorize(mask: np.ndarray) -> np.ndarray:
    """Label mask (H, W) -> colour preview (H, W, 3) uint8."""
    mask = np.asarray(mask)
    if mask.size and int(mask.max()) >= NUM_CLASSES:
        raise ValueError(f"mask holds label {int(mask.max())}, canonical labels stop at {NUM_CLASSES - 1}")
    return COLORS[mask]


def decolorize(preview: np.ndarray) -> np.ndarray:
    """Colour preview (H, W, 3) -> label mask; every pixel must be exactly one of COLORS."""
    rgb = np.asarray(preview, dtype=np.uint8)
    keys = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    palette = (COLORS[:, 0].astype(np.int32) << 16) | (COLORS[:, 1].astype(np.int32) << 8) | COLORS[:, 2]
    order = np.argsort(palette)
    pos = np.clip(np.searchsorted(palette[order], keys), 0, NUM_CLASSES - 1)
    found = palette[order][pos] == keys
    if not found.all():
        y, x = np.argwhere(~found)[0]
        raise ValueError(f"colour {tuple(int(c) for c in rgb[y, x])} at (x {x}, y {y}) is not a label colour")
    return order[pos].astype(np.uint8)


@dataclass(frozen=True)
class Component:
    """One of the paper's five facial components."""

    name: str
    labels: tuple[str, ...]
    crop_256: tuple[int, int] | None  # (w, h) at 256²; None = the whole image, masked
    fallback_center_256: tuple[float, float] | None  # (x, y) when the component is absent

    @property
    def indices(self) -> tuple[int, ...]:
        return tuple(LABEL_INDEX[n] for n in self.labels)

    def crop_size(self, resolution: int) -> tuple[int, int]:
        """(w, h) of the crop for a square image of this resolution; crops scale with it."""
        if self.crop_256 is None:
            return resolution, resolution
        w, h = self.crop_256
        return max(2, round(w * resolution / 256)), max(2, round(h * resolution / 256))


# Eye crops are 48×32 and the mouth 144×80 at 256², as in the paper; skin and hair use the whole masked image.
COMPONENTS: dict[str, Component] = {c.name: c for c in (
    Component("left_eye", ("l_eye",), (48, 32), (96.0, 116.0)),
    Component("right_eye", ("r_eye",), (48, 32), (160.0, 116.0)),
    Component("mouth", ("mouth", "u_lip", "l_lip"), (144, 80), (128.0, 184.0)),
    Component("skin", ("skin", "nose", "l_brow", "r_brow", "l_ear", "r_ear"), None, None),
    Component("hair", ("hair",), None, None),
)}
# Classes that belong to no component: the background-fusing net keeps them.
BACKGROUND_LABELS: tuple[str, ...] = ("background", "eye_g", "hat", "ear_r", "neck", "neck_l", "cloth")


def face_hair_region(mask: np.ndarray) -> np.ndarray:
    """Where an edited face may change its photo: every face and hair label, grown by nothing; glasses
    and hats count as face (they move with it), neck, clothes and earrings do not."""
    keep = [LABEL_INDEX[n] for n in LABELS if n not in ("background", "ear_r", "neck", "neck_l", "cloth")]
    return np.isin(mask, keep)


# What a user may name: every component, and "eyes" for both.
COMPONENT_CHOICES = ", ".join(COMPONENTS) + ", or eyes"


class UnknownComponent(ValueError):
    """A name that is not a component (nor "eyes"); `part` is the name as given."""

    def __init__(self, part: str):
        super().__init__(f"{part!r}: not a component ({COMPONENT_CHOICES})")
        self.part = part


def component_names(parts) -> list[str]:
    """The components a user names, each once, in order: "eyes" is left_eye and right_eye. Raises
    UnknownComponent at the first name that is not one."""
    names: list[str] = []
    for part in parts:
        for name in (("left_eye", "right_eye") if part == "eyes" else (part,)):
            if name not in COMPONENTS:
                raise UnknownComponent(part)
            if name not in names:
                names.append(name)
    return names


def has_component(mask: np.ndarray, name: str) -> bool:
    """Whether the mask holds any pixel of the named component (a bald head has no hair)."""
    return bool(np.isin(mask, COMPONENTS[name].indices).any())


def component_mask(mask: np.ndarray, name: str) -> np.ndarray:
    """Boolean (H, W): pixels of the named component."""
    return np.isin(mask, COMPONENTS[name].indices)


def component_center(mask: np.ndarray, name: str) -> tuple[float, float]:
    """(x, y) centre of the component's bounding box, or the template fallback scaled to the mask size."""
    comp = COMPONENTS[name]
    h, w = mask.shape[:2]
    ys, xs = np.nonzero(component_mask(mask, name))
    if xs.size:
        return (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
    if comp.fallback_center_256 is None:
        return (w - 1) / 2, (h - 1) / 2
    fx, fy = comp.fallback_center_256
    return fx * w / 256, fy * h / 256


def crop_box(center: tuple[float, float], size: tuple[int, int], image_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of a w×h box centred on center, shifted to lie inside an image of (w, h)."""
    (cx, cy), (w, h), (iw, ih) = center, size, image_size
    x0 = int(round(cx - w / 2))
    y0 = int(round(cy - h / 2))
    x0 = min(max(x0, 0), max(iw - w, 0))
    y0 = min(max(y0, 0), max(ih - h, 0))
    return x0, y0, x0 + w, y0 + h


def component_crop(image: np.ndarray, mask: np.ndarray, name: str) -> np.ndarray:
    """The component's crop: a fixed-size window for eyes/mouth, the whole image masked for skin/hair.

    image (H, W, C) and mask (H, W) share H == W == resolution. Returns (h, w, C), zero outside the component
    for skin and hair.
    """
    res = mask.shape[0]
    comp = COMPONENTS[name]
    if comp.crop_256 is None:
        return np.where(component_mask(mask, name)[..., None], image, 0).astype(image.dtype)
    x0, y0, x1, y1 = crop_box(component_center(mask, name), comp.crop_size(res), (mask.shape[1], res))
    return image[y0:y1, x0:x1].copy()
