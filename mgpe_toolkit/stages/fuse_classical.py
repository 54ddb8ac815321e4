"""Classical `fuse`: the generated foreground onto the target photo's background, without weights.

Hair is composited with a feathered edge; the face (skin, eyes, brows, nose, mouth) is then Poisson-blended
(OpenCV seamlessClone) so its colour meets the neck, ears and new hair without a seam - the artefact the
paper's background-fusing network exists for. Where the target mask turned face or hair into background
(hair->background), the background is inpainted first.
"""
from __future__ import annotations

import numpy as np

from ..labels import COMPONENTS, LABEL_INDEX
from ..types import FaceMask

FACE = [i for n in ("skin", "left_eye", "right_eye", "mouth") for i in COMPONENTS[n].indices]
FOREGROUND = FACE + list(COMPONENTS["hair"].indices)
UNTINTED = [*COMPONENTS["left_eye"].indices, *COMPONENTS["right_eye"].indices, LABEL_INDEX["mouth"]]


def feathered(region: np.ndarray, radius: float) -> np.ndarray:
    """0..1 weight: 1 inside `region` further than `radius` px from its edge, ramping to 0 at the edge."""
    import cv2

    if radius <= 0:
        return region.astype(np.float32)
    dist = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 3)
    return np.clip(dist / radius, 0, 1).astype(np.float32)


SKIN = list(COMPONENTS["skin"].indices)


def _smooth(values: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised convolution: a blur of `values` that counts only where `weight` is 1, spread everywhere. A wide
    blur runs on a copy shrunk to about 4 px per sigma and comes back bilinear (the same field, a fraction of the
    time on a large crop)."""
    import cv2

    h, w = values.shape[:2]
    step = max(1, int(sigma // 4))
    num, den = values * weight, weight
    if step > 1:
        small = (max(1, w // step), max(1, h // step))
        num, den = (cv2.resize(a, small, interpolation=cv2.INTER_AREA) for a in (num, den))
    num, den = (cv2.GaussianBlur(a, (0, 0), sigma * num.shape[1] / w) for a in (num, den))
    out = num / np.maximum(den, 1e-3)
    return out if step == 1 else cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)


# The photo's shading reaches the foreground's local mean in full, its detail (each pixel's difference from that mean)
# to this power of the gain: a dark face onto a fair photo (gain near 2) kept its highlights at twice their contrast,
# as silver patches. Held-out swaps (bench_classical.py --celebamask): seam 3.234 -> 3.172, FID 117.0 -> 117.7 (67
# faces: within its noise); the full gain on the mean keeps the seam (half the gain on both: seam 3.64).
DETAIL_GAIN = 0.5


def harmonise(foreground: np.ndarray, photo: np.ndarray, target: np.ndarray, photo_labels: np.ndarray,
              region: np.ndarray) -> np.ndarray:
    """The generated face and hair lit and the face white-balanced like the photo's own face: in Lab, the low-
    frequency lightness takes the ratio of the photo's skin shading to the foreground's (a shading field, so light
    from one side stays on that side), the detail about it that ratio to the power DETAIL_GAIN, and the face's a, b
    the shift between the mean skin colours. Pixels the foreground keeps from the photo (an edit of its own face)
    do not change."""
    import cv2

    fg_skin = np.isin(target, SKIN)
    own_skin = np.isin(photo_labels, SKIN)
    if fg_skin.sum() < 200 or own_skin.sum() < 200:
        return foreground
    lab_f = cv2.cvtColor(foreground, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab_p = cv2.cvtColor(photo, cv2.COLOR_RGB2LAB).astype(np.float32)
    sigma = 0.12 * float(np.sqrt(fg_skin.sum()))
    shade_f = _smooth(lab_f[..., 0], fg_skin.astype(np.float32), sigma)
    shade_p = _smooth(lab_p[..., 0], own_skin.astype(np.float32), sigma)
    gain = np.clip((shade_p + 1) / (shade_f + 1), 0.5, 2.0)
    shift = lab_p[own_skin][:, 1:].mean(0) - lab_f[fg_skin][:, 1:].mean(0)
    out = lab_f.copy()
    out[..., 0] = shade_f * gain + (lab_f[..., 0] - shade_f) * gain ** DETAIL_GAIN
    # Hair keeps its own colour (a dark hue shifts far), only its light; so do eyes and teeth (a skin tone's shift
    # would tint their whites).
    face = np.isin(target, [i for i in FACE if i not in UNTINTED])[..., None]
    out[..., 1:] = lab_f[..., 1:] + shift * face
    out = cv2.cvtColor(np.clip(out + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    same = (foreground == photo).all(-1)  # pixels the edit left as they were stay exactly so
    keep = ~region | same
    return np.where(keep[..., None], foreground, out)


class ClassicalFuser:
    name = "classical"

    def __init__(self, blend: str = "poisson", feather: float = 2.0, harmonise: bool = True):
        if blend not in ("poisson", "feather"):
            raise ValueError(f"blend must be poisson or feather, not {blend!r}")
        self.blend, self.feather, self.harmonise = blend, feather, harmonise

    def fuse(self, foreground: np.ndarray, background: np.ndarray, target: FaceMask,
             background_mask: FaceMask | None = None) -> np.ndarray:
        import cv2

        from ..errors import UsageError

        if foreground.dtype != np.uint8 or foreground.ndim != 3 or foreground.shape[2] != 3:
            raise UsageError("the foreground is a feature map (the `paper` generator's), not an image: fuse it with "
                             "`--fuser mgpe`")
        labels = target.labels
        fg_region = np.isin(labels, FOREGROUND)
        base = background.copy()
        if background_mask is not None:
            revealed = np.isin(background_mask.labels, FOREGROUND) & ~fg_region
            if revealed.any():
                from .generate_classical import fill_from_known

                grown = cv2.dilate(revealed.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
                backdrop = (background_mask.labels == LABEL_INDEX["background"]) & ~grown
                if backdrop.sum() > 50:  # fill from the backdrop only, not from the face or the clothes
                    base = fill_from_known(base, backdrop, grown)
                else:
                    base = cv2.inpaint(base, grown.astype(np.uint8), 5, cv2.INPAINT_TELEA)
        if background_mask is not None and self.harmonise:
            foreground = harmonise(foreground, background, labels, background_mask.labels, fg_region)
        alpha = feathered(fg_region, self.feather)[..., None]
        out = (foreground.astype(np.float32) * alpha + base.astype(np.float32) * (1 - alpha) + 0.5).astype(np.uint8)
        if self.blend == "poisson":
            out = self._poisson_face(foreground, out, np.isin(labels, FACE))
        return out

    @staticmethod
    def _poisson_face(foreground: np.ndarray, composite: np.ndarray, face: np.ndarray) -> np.ndarray:
        import cv2

        if face.sum() < 50:
            return composite
        pad = 8  # seamlessClone misbehaves when the mask touches the image border
        src = cv2.copyMakeBorder(foreground, pad, pad, pad, pad, cv2.BORDER_REFLECT)
        dst = cv2.copyMakeBorder(composite, pad, pad, pad, pad, cv2.BORDER_REFLECT)
        mask = cv2.copyMakeBorder(face.astype(np.uint8) * 255, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        mask = cv2.erode(mask, np.ones((3, 3), np.uint8))
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            return composite
        x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
        # OpenCV pastes the mask's bounding box with its top-left at centre - size // 2: this keeps it in place.
        centre = (int(x0 + (x1 - x0 + 1) // 2), int(y0 + (y1 - y0 + 1) // 2))
        inside = (mask > 0)[pad:-pad, pad:-pad, None]
        try:  # (seamlessClone writes into its mask argument: give it a copy)
            blended = cv2.seamlessClone(src, dst, mask.copy(), centre, cv2.NORMAL_CLONE)
        except cv2.error:
            return composite
        return np.where(inside, blended[pad:-pad, pad:-pad], composite)  # OpenCV also nudges pixels beside the mask
