"""Classical `generate`: paints each component of the target mask from its code, without weights.

* Geometry: skin and hair follow a similarity fitted to the eye and mouth centres (the head moves as a
  whole); eyes and mouth follow an axis-aligned scale + shift from their region moments (grow, shrink, move).
* Growth: where a target region has no source pixel (hair->skin leaves a bare forehead), the component's own
  colours are spread in by normalised convolution and given back a grain that matches the component's.
* Colour: a code carrying `colour_from` keeps its own pixels and takes that code's Lab distribution
  (quantile matching per channel: hair colour, lip colour).
Limits: nothing here can invent structure the source lacks (teeth in a mouth that was closed, an ear hidden
by hair, a hairstyle's strands in a region that had none); that is the learned path's job.
"""
from __future__ import annotations

import numpy as np

from ..errors import MgpeError
from ..labels import COMPONENTS, component_mask
from ..types import ComponentCodes, FaceMask
from .encode_classical import PatchCode, anchors_of

PAINT_ORDER = ("skin", "hair", "left_eye", "right_eye", "mouth")


def _is_identity(m: np.ndarray, tol: float = 1e-3) -> bool:
    return bool(np.abs(m - np.array([[1, 0, 0], [0, 1, 0]], float)).max() < tol)


def moments_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2×3 affine (scale per axis + shift) taking region src's centroid/spread onto region dst's."""
    ys, xs = np.nonzero(src)
    yt, xt = np.nonzero(dst)
    sx = np.clip((xt.std() + 0.5) / (xs.std() + 0.5), 0.4, 2.5)
    sy = np.clip((yt.std() + 0.5) / (ys.std() + 0.5), 0.4, 2.5)
    if abs(sx - 1) < 0.03 and abs(sy - 1) < 0.03:
        sx = sy = 1.0
    tx, ty = xt.mean() - sx * xs.mean(), yt.mean() - sy * ys.mean()
    if abs(tx) < 0.25 and abs(ty) < 0.25 and sx == sy == 1.0:
        tx = ty = 0.0
    return np.array([[sx, 0, tx], [0, sy, ty]], float)


def push_pull(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Smooth fill of every pixel from the `known` ones: weighted image pyramid down (pull), then each level's
    gaps filled from the coarser level on the way up (push)."""
    import cv2

    img = image.astype(np.float32) * known[..., None]
    w = known.astype(np.float32)
    levels = []
    while True:
        levels.append((img, w))
        if min(img.shape[:2]) <= 2 or w.min() > 0:
            break
        img, w = cv2.pyrDown(img), cv2.pyrDown(w)
    est = levels[-1][0] / np.maximum(levels[-1][1], 1e-6)[..., None]
    for img, w in reversed(levels[:-1]):
        up = cv2.resize(est, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
        a = np.clip(w * 4, 0, 1)[..., None]  # trust a level where it has enough known weight
        est = a * (img / np.maximum(w, 1e-6)[..., None]) + (1 - a) * up
    return est


def fill_from_known(image: np.ndarray, known: np.ndarray, unknown: np.ndarray, seed: int = 0) -> np.ndarray:
    """Colours for `unknown` pixels spread smoothly from `known` ones, with a grain like theirs."""
    import cv2

    if not unknown.any() or not known.any():
        return image
    out = image.astype(np.float32)
    core = cv2.erode(known.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    core = core if core.sum() > 50 else known  # edge pixels of a parsed region carry its neighbours' colours
    smooth = push_pull(out, core)
    # Far from the known pixels, drift to their median colour rather than to whatever lies nearest.
    dist = cv2.distanceTransform((~core).astype(np.uint8), cv2.DIST_L2, 3)
    t = np.clip(dist / (0.08 * max(image.shape[:2])), 0, 1)[..., None]
    smooth = smooth * (1 - t) + np.median(out[core], axis=0) * t
    grain = (out - cv2.GaussianBlur(out, (0, 0), 1.5))[known]
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 1, size=out.shape).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), 0.7)
    noise *= (grain.std(axis=0) if len(grain) > 10 else 1.0) / max(float(noise.std()), 1e-6)
    out[unknown] = (smooth + noise)[unknown]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def rim_shaded(image: np.ndarray, region: np.ndarray, grown: np.ndarray, depth: float = 0.25,
               width: float = 0.08) -> np.ndarray:
    """Grown skin shaded like the side of a head: darker towards the region's outline (by up to `depth`, over
    `width` × the image side), so a head grown from a forehead is not a flat cut-out."""
    import cv2

    dist = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 5)
    rim = np.clip(dist / (width * region.shape[0]), 0, 1)
    shade = (1 - depth * (1 - rim) ** 2)[..., None]
    out = image.astype(np.float32)
    out[grown] = (out * shade)[grown]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def match_colours(image: np.ndarray, region: np.ndarray, reference_lab: np.ndarray) -> np.ndarray:
    """Give `region` of `image` the Lab distribution of `reference_lab` (per-channel quantile mapping)."""
    import cv2

    if not region.any() or len(reference_lab) < 10:
        return image
    lab = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB).astype(np.float32)
    px = lab[region]
    q = np.linspace(0, 100, 101)
    for c in range(3):
        src_q = np.percentile(px[:, c], q)
        ref_q = np.percentile(reference_lab[:, c], q)
        src_q = src_q + np.arange(len(q)) * 1e-4  # strictly increasing for interp
        px[:, c] = np.interp(px[:, c], src_q, ref_q)
    lab[region] = px
    return cv2.cvtColor(np.clip(lab + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


class ClassicalGenerator:
    name = "classical"

    def __init__(self, shade: bool = True):
        self.shade = shade  # rim shading of skin grown where there was none (rim_shaded)

    def generate(self, codes: ComponentCodes, target: FaceMask) -> np.ndarray:
        import cv2

        from ..align import fit_similarity

        labels = target.labels
        s = labels.shape[0]
        fg = np.zeros((*labels.shape, 3), np.uint8)
        target_anchors = anchors_of(labels)
        for name in PAINT_ORDER:
            region_t = component_mask(labels, name)
            if not region_t.any():
                continue
            code: PatchCode = codes.codes[name]
            if not code.region.any():
                raise MgpeError(f"the source face has no {name} ({', '.join(COMPONENTS[name].labels)}) in its mask")
            if code.image.shape[:2] != labels.shape:
                raise MgpeError(f"source face is {code.image.shape[1]}², the target mask {s}²")
            if COMPONENTS[name].crop_256 is None:
                m = fit_similarity(code.anchors, target_anchors)
                if np.abs(m - np.eye(3)[:2]).max() < 0.01 * max(1.0, s / 256):
                    m = np.eye(3)[:2]
            else:
                m = moments_transform(code.region, region_t)
            if _is_identity(m):
                warped, wregion = code.image, code.region
            else:
                warped = cv2.warpAffine(code.image, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
                wregion = cv2.warpAffine(code.region.astype(np.uint8) * 255, m, (s, s), flags=cv2.INTER_LINEAR) > 127
            known = wregion & region_t
            unknown = region_t & ~wregion
            if unknown.any():
                if known.sum() < 20:  # nothing of it lands on the target: spread its whole warped region
                    known = wregion
                warped = fill_from_known(warped, known, unknown, seed=s + len(name))
                if name == "skin" and self.shade:
                    warped = rim_shaded(warped, region_t, unknown)
            if code.colour_from is not None:
                warped = match_colours(warped, region_t, code.colour_from.lab)
            fg[region_t] = warped[region_t]
        return fg
