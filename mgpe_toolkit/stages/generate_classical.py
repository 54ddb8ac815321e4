"""Classical `generate`: paints each component of the target mask from its code, without weights.

* Geometry: skin and hair follow a similarity fitted to the eye and mouth centres (the head moves as a
  whole); eyes and mouth follow an axis-aligned scale + shift from their region moments (grow, shrink, move).
* Growth: where a target region has no source pixel (hair->skin leaves a bare forehead), the component's own
  colours are spread in (push-pull) and given back a grain that matches the component's. In a swap, hair and
  skin the source's do not reach (or that the source's hair, hat or glasses hid: encode_classical.visible_skin)
  are the target's own (`PatchCode.under`) in the source's colours, the source's fading into them (fade_into).
* Edges: each component fades over the one painted before it (`soften`), so none has a cut outline.
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
from .encode_classical import COLOUR_LABELS, PatchCode, anchors_of, box_of, colour_region

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


def mesh_warp(image: np.ndarray, region: np.ndarray, src: np.ndarray, dst: np.ndarray,
              similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`image` and its `region` warped so that the points `src` land on `dst`: piecewise affine over the Delaunay
    triangles of `dst`, continued beyond the mesh by `similarity` (source -> target) through a ring of its points
    outside the crop. The map is exact on a grid of about 128² and linear between its nodes."""
    import cv2
    from scipy.spatial import Delaunay

    s = image.shape[0]
    edge = np.linspace(-0.15 * s, 1.15 * s, 9)
    ring_t = np.array([(x, y) for x in edge for y in edge if min(x, y) < 0 or max(x, y) > s - 1], np.float64)
    inv = cv2.invertAffineTransform(np.asarray(similarity, np.float64))
    pts_t = np.vstack([dst, ring_t])
    pts_s = np.vstack([src, ring_t @ inv[:, :2].T + inv[:, 2]])
    tri = Delaunay(pts_t)
    step = max(1, s // 128)
    nodes = np.arange(0, s + step, step, dtype=np.float64)
    gx, gy = np.meshgrid(nodes, nodes)
    grid = np.stack([gx.ravel(), gy.ravel()], 1)
    simplex = tri.find_simplex(grid)
    simplex = np.where(simplex < 0, tri.find_simplex(np.clip(grid, 0, s - 1)), simplex)  # (never outside the ring)
    t = tri.transform[simplex]
    b = np.einsum("nij,nj->ni", t[:, :2], grid - t[:, 2])
    weights = np.column_stack([b, 1 - b.sum(1)])
    mapped = np.einsum("ni,nij->nj", weights, pts_s[tri.simplices[simplex]]).astype(np.float32)
    coarse = mapped.reshape(len(nodes), len(nodes), 2)
    px = np.arange(s, dtype=np.float32) / step
    fx, fy = np.meshgrid(px, px)
    full = cv2.remap(coarse, fx, fy, cv2.INTER_LINEAR)
    warped = cv2.remap(image, full[..., 0], full[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    wregion = cv2.remap(region.astype(np.uint8) * 255, full[..., 0], full[..., 1], cv2.INTER_LINEAR) > 127
    return warped, wregion


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


def fill_from_known(image: np.ndarray, known: np.ndarray, unknown: np.ndarray, seed: int = 0, *,
                    robust: bool = True, near: bool = False) -> np.ndarray:
    """Colours for `unknown` pixels spread smoothly from `known` ones, with a grain like theirs (grain_like).
    near: only the known pixels within a tenth of the side of the unknown ones count (a few pixels of an eye's
    outline are filled from the eye, not from a pyramid of the whole crop)."""
    import cv2

    if not unknown.any() or not known.any():
        return image
    if near:
        box = box_of(unknown, int(0.1 * max(image.shape[:2])))
        if known[box].any():
            out = image.copy()
            out[box] = fill_from_known(image[box], known[box], unknown[box], seed, robust=robust)
            return out
    out = image.astype(np.float32)
    core = cv2.erode(known.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    core = core if core.sum() > 50 else known  # edge pixels of a parsed region carry its neighbours' colours
    smooth = push_pull(out, core)
    # Far from the known pixels, drift to their median colour rather than to whatever lies nearest.
    dist = cv2.distanceTransform((~core).astype(np.uint8), cv2.DIST_L2, 3)
    t = np.clip(dist / (0.08 * max(image.shape[:2])), 0, 1)[..., None]
    smooth = smooth * (1 - t) + np.median(out[core], axis=0) * t
    out[unknown] = (smooth + grain_like(out, core, seed, robust=robust))[unknown]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def grain_like(image: np.ndarray, region: np.ndarray, seed: int = 0, *, robust: bool = True) -> np.ndarray:
    """(H, W, 3) float32 noise with the fine grain of `region`. Robust (skin, backdrop): grain in the light alone
    (colour grain reads as speckle), one field on all channels, scaled by the median absolute deviation of the
    region's high frequencies in grey, so edges and text in a backdrop do not count as grain. Not robust (hair,
    whose strands and glints are its texture): each channel its own field, scaled by the plain standard
    deviation."""
    import cv2

    img = image.astype(np.float32)
    high = (img - cv2.GaussianBlur(img, (0, 0), 1.5))[region]
    if len(high) < 10:
        return np.zeros_like(img)
    shape = img.shape[:2] if robust else img.shape
    noise = cv2.GaussianBlur(np.random.default_rng(seed).normal(0, 1, shape).astype(np.float32), (0, 0), 0.7)
    noise /= max(float(noise.std()), 1e-6)
    if not robust:
        return noise * high.std(axis=0)
    light = high @ np.array([0.299, 0.587, 0.114], np.float32)
    spread = 1.4826 * float(np.median(np.abs(light - np.median(light))))
    return np.repeat(noise[..., None] * spread, 3, axis=2)


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


# How far (a share of the crop side) a warped component fades into the target's own pixels beneath it.
UNDER_FADE = 0.015


def fade_into(warped: np.ndarray, under: np.ndarray, known: np.ndarray, region: np.ndarray,
              sigma: float) -> np.ndarray:
    """`region` filled from `under` except on the `known` pixels (the source's, warped), which keep `warped` and
    fade into `under` over about 2·sigma where they meet it (no cut where the source's pixels end and the target's
    begin; none at the region's own outline)."""
    import cv2

    box = box_of(region, int(3 * sigma) + 1)
    known, region = known[box], region[box]
    solid = (known | ~region).astype(np.float32)
    alpha = (np.clip(2 * cv2.GaussianBlur(solid, (0, 0), sigma) - 1, 0, 1) * known)[..., None]
    mixed = np.clip(alpha * warped[box] + (1 - alpha) * under[box] + 0.5, 0, 255).astype(np.uint8)
    out = warped.copy()
    out[box] = np.where(region[..., None], mixed, warped[box])
    return out


def soften(fg: np.ndarray, painted: np.ndarray, warped: np.ndarray, region: np.ndarray, sigma: float) -> None:
    """Fade `warped` outward over the `painted` pixels beside `region` (in place), so a component painted over
    another (eyes and mouth warped apart from the skin, hair over grown skin) has no cut edge."""
    import cv2

    if sigma <= 0 or not painted.any():
        return
    alpha = cv2.GaussianBlur(region.astype(np.float32), (0, 0), sigma)[..., None]
    ring = painted & ~region & (alpha[..., 0] > 0.01)
    mixed = np.rint(alpha * warped.astype(np.float32) + (1 - alpha) * fg.astype(np.float32))
    fg[ring] = np.clip(mixed, 0, 255).astype(np.uint8)[ring]


def match_colours(image: np.ndarray, region: np.ndarray, reference_lab: np.ndarray, *,
                  edge_band: bool = False) -> np.ndarray:
    """Give `region` of `image` the Lab distribution of `reference_lab` (per-channel quantile mapping).

    `edge_band`: the region's labelled outline is a band of its neighbour's pixels (lips, whose outline is
    skin; `reference_lab` then comes from a core as well, encode_classical.colour_pixels). The mapping is built
    between the 2nd and 98th percentiles of the region's core and is a plain shift beyond them, the outer pixel
    or two keep their colour, and the change fades in over the next two (both distances shrink with a thin
    part's half-width): mapped onto the reference's tails, those pixels would draw a halo. Hair takes the plain
    mapping: its outline is strands, and a rim of the old colour would show."""
    import cv2

    from .encode_classical import core_of

    if not region.any() or len(reference_lab) < 10:
        return image
    unit = region.shape[0] / 256
    box = box_of(region)  # (the same result as on the whole image, in a fraction of the time)
    image, whole, region = image[box], image, region[box]
    lab = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB).astype(np.float32)
    px = lab[region]
    core = lab[core_of(region)] if edge_band else px
    q = np.linspace(2, 98, 49) if edge_band else np.linspace(0, 100, 101)
    mapped = px.copy()
    for c in range(3):
        src_q = np.percentile(core[:, c], q) + np.arange(len(q)) * 1e-4  # strictly increasing for interp
        ref_q = np.percentile(reference_lab[:, c], q)
        v = px[:, c]
        mapped[:, c] = np.where(v < src_q[0], v + ref_q[0] - src_q[0],
                                np.where(v > src_q[-1], v + ref_q[-1] - src_q[-1], np.interp(v, src_q, ref_q)))
    if edge_band:
        dist = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 3)
        k = 2 * int(np.ceil(12 * unit)) + 1  # the thickest part nearby: a lip, not the thin end of it
        half_width = cv2.dilate(dist, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        f = np.clip(half_width / (4 * unit), 0.3, 1)
        alpha = np.clip((dist - 1.5 * unit * f) / (2 * unit * f), 0, 1)[region][:, None]
        mapped = alpha * mapped + (1 - alpha) * px
    lab[region] = mapped
    out = whole.copy()
    out[box] = cv2.cvtColor(np.clip(lab + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    return out


def match_moments(image: np.ndarray, region: np.ndarray, reference_lab: np.ndarray) -> np.ndarray:
    """`region` of `image` given the mean and (within a factor 1.5) the spread of `reference_lab` per Lab channel:
    a face's own skin or hair in another's colours. Unlike quantile matching (match_colours), a dark face's specular
    highlights do not land on a fair face's lit cheek as white patches, nor does dark hair's narrow, noisy range
    stretched over blond hair's break into blotches."""
    import cv2

    if not region.any() or len(reference_lab) < 10:
        return image
    box = box_of(region)
    lab = cv2.cvtColor(np.ascontiguousarray(image[box]), cv2.COLOR_RGB2LAB).astype(np.float32)
    px = lab[region[box]]
    gain = np.clip((reference_lab.std(0) + 1) / (px.std(0) + 1), 1 / 1.5, 1.5)
    lab[region[box]] = (px - px.mean(0)) * gain + reference_lab.mean(0)
    out = image.copy()
    out[box] = cv2.cvtColor(np.clip(lab + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    return out


class ClassicalGenerator:
    name = "classical"

    def __init__(self, shade: bool = True, soften: float = 1.0):
        self.shade = shade  # rim shading of skin grown where there was none (rim_shaded)
        self.soften = soften  # px at 256²: how far a component's edge fades over the one painted before it

    def generate(self, codes: ComponentCodes, target: FaceMask) -> np.ndarray:
        import cv2

        from ..align import fit_similarity

        labels = target.labels
        s = labels.shape[0]
        fg = np.zeros((*labels.shape, 3), np.uint8)
        painted = np.zeros(labels.shape, bool)
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
            if code.mesh_to is not None:
                warped, wregion = mesh_warp(code.image, code.region, *code.mesh_to, m)
            elif _is_identity(m):
                warped, wregion = code.image, code.region
            else:
                warped = cv2.warpAffine(code.image, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
                wregion = cv2.warpAffine(code.region.astype(np.uint8) * 255, m, (s, s), flags=cv2.INTER_LINEAR) > 127
            known = wregion & region_t
            unknown = region_t & ~wregion
            if unknown.any() and code.under is not None and code.region.sum() >= 20:
                own = region_t & code.under.region
                if (own & unknown).any():  # the target's own pixels there, in this code's colours
                    recoloured = match_moments(code.under.image, code.under.region, code.lab)
                    warped = fade_into(warped, recoloured, wregion, own, UNDER_FADE * s)
                    known, unknown = known | own, unknown & ~own
            if unknown.any():
                if known.sum() < 20:  # nothing of it lands on the target: spread its whole warped region
                    known = wregion
                warped = fill_from_known(warped, known, unknown, seed=s + len(name), robust=name != "hair",
                                         near=COMPONENTS[name].crop_256 is not None)
                if name == "skin" and self.shade:
                    warped = rim_shaded(warped, region_t, unknown)
            if code.colour_from is not None:
                warped = match_colours(warped, region_t & colour_region(labels, name), code.colour_from.lab,
                                       edge_band=name in COLOUR_LABELS)
            soften(fg, painted, warped, region_t, self.soften * s / 256)
            fg[region_t] = warped[region_t]
            painted |= region_t
        return fg
