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


@dataclass
class PatchCode:
    image: np.ndarray  # (S, S, 3) uint8: the whole aligned face the component comes from
    region: np.ndarray  # (S, S) bool: the component's pixels
    anchors: np.ndarray  # (3, 2): left eye, right eye and mouth centres of that face
    lab: np.ndarray  # (K, 3) float32 Lab pixels of the component (for colour statistics)
    colour_from: "PatchCode | None" = None  # impose these colour statistics on this component's own pixels


def anchors_of(mask: np.ndarray) -> np.ndarray:
    return np.array([component_center(mask, n) for n in ("left_eye", "right_eye", "mouth")], np.float64)


def lab_pixels(image: np.ndarray, region: np.ndarray) -> np.ndarray:
    import cv2

    lab = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB).astype(np.float32)
    return lab[region]


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
            codes[name] = PatchCode(image, region, anchors, lab_pixels(image, region))
        return ComponentCodes(codes=codes, mask=mask, encoder=self.name)

    def mix(self, target: ComponentCodes, source: ComponentCodes, names: list[str]) -> ComponentCodes:
        """Codes of `target` with the named components' appearance from `source`."""
        codes = dict(target.codes)
        for name in names:
            src = source.codes[name]
            codes[name] = replace(codes[name], colour_from=src) if name in RECOLOUR else src
        return ComponentCodes(codes=codes, mask=target.mask, encoder=self.name)
