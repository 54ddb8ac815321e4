"""Parser `mesh`: no weights of its own, only mediapipe 0.10.21's face mesh and selfie models (ONNX, shipped).

* Face parts (skin, brows, eyes, nose, lips, inner mouth) are polygons of the 478-point face mesh, with brows
  refined by darkness against the surrounding skin.
* The person/background split is mediapipe's selfie segmentation.
* Hair, ears, neck and cloth are heuristics: colour models seeded from places where a class is near certain
  (skin from the cheeks, hair from just above the head, clothes from the bottom of the frame), resolved with
  OpenCV's GrabCut so the boundary follows edges.

Limits (also in docs/editing.md): glasses, earrings and necklaces are never labelled; a patterned head covering
(a printed scarf) is labelled hat, a plain hat or cap counts as hair;
hair whose colour is close to the skin or to the background (blond on a white wall) is under- or over-grown;
a face seen in profile, or hidden behind hands, loses parts of the mesh.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import NoFaceError
from ..labels import LABEL_INDEX
from ..types import FaceMask
from . import face_graphs
from .align_mediapipe import meshes, nearest_mesh

# Ordered outlines (mediapipe face-mesh indices). "r_" parts are the subject's right = image left.
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
             176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
EYE_IMAGE_LEFT = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
EYE_IMAGE_RIGHT = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
BROW_IMAGE_LEFT = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
BROW_IMAGE_RIGHT = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
UPPER_LIP = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191, 78)
LOWER_LIP = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95, 78)
INNER_MOUTH = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
NOSE_POINTS = (168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 97, 326, 327, 294, 278, 344, 440, 275, 45, 220, 115, 48,
               64, 122, 351, 196, 419, 3, 248, 51, 281, 131, 360, 49, 279, 102, 331, 129, 358)
CHIN = 152
FOREHEAD_TOP = 10
JAW_SIDES = (172, 397)  # gonion-ish points: the jaw's width
CHEEK_SIDES = (234, 454)  # where the face outline meets the ears


@dataclass
class MeshObservation:
    """What the mediapipe models see in one aligned image."""

    mesh: np.ndarray  # (478, 2) float pixels
    person: np.ndarray | None  # (H, W) float32 in 0..1, selfie segmentation (None when not asked for)


def _fill(shape: tuple[int, int], points: np.ndarray, *, hull: bool = False) -> np.ndarray:
    import cv2

    out = np.zeros(shape, np.uint8)
    pts = np.round(points * 16).astype(np.int32)  # 4 fractional bits: sub-pixel polygon edges
    if hull:
        pts = cv2.convexHull(pts)
    cv2.fillPoly(out, [pts.reshape(-1, 1, 2)], 1, lineType=cv2.LINE_8, shift=4)
    return out.astype(bool)


def _disk(radius: int) -> np.ndarray:
    import cv2

    r = max(1, int(radius))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def _dilate(mask: np.ndarray, radius: float) -> np.ndarray:
    import cv2

    if radius < 0.5:
        return mask.astype(bool)
    return cv2.dilate(mask.astype(np.uint8), _disk(round(radius))).astype(bool)


def _erode(mask: np.ndarray, radius: float) -> np.ndarray:
    import cv2

    return cv2.erode(mask.astype(np.uint8), _disk(round(radius))).astype(bool)


def _largest_components(mask: np.ndarray, min_fraction: float = 0.05) -> np.ndarray:
    """Keep connected components holding at least min_fraction of the largest one."""
    import cv2

    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask.astype(bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= min_fraction * areas.max()) + 1
    return np.isin(lab, keep)


def _fill_holes(mask: np.ndarray, max_area: int) -> np.ndarray:
    import cv2

    n, lab, stats, _ = cv2.connectedComponentsWithStats((~mask).astype(np.uint8), connectivity=4)
    out = mask.copy()
    for i in range(1, n):
        x, y, w, h, area = stats[i]
        touches = x == 0 or y == 0 or x + w == mask.shape[1] or y + h == mask.shape[0]
        if area <= max_area and not touches:
            out[lab == i] = True
    return out


class MeshParser:
    name = "mesh"

    def __init__(self, grabcut_iterations: int = 2):
        self.grabcut_iterations = grabcut_iterations

    def observe(self, image: np.ndarray, person: bool = True) -> MeshObservation:
        """Run the mediapipe models on an aligned RGB image (the selfie model only for `person`); raises
        NoFaceError when the mesh finds no face."""
        face_graphs.require()
        image = np.ascontiguousarray(image[..., :3])
        h, w = image.shape[:2]
        found, offset = meshes(image), 0
        if not found:
            # A face filling the whole crop can defeat the detector: retry with a margin.
            offset = max(h, w) // 4
            found = meshes(np.pad(image, ((offset, offset), (offset, offset), (0, 0)), mode="edge"))
        if not found:
            raise NoFaceError("no face found by the face mesh")
        seen = face_graphs.person_mask(image) if person else None
        # The aligned face's eyes are at the template's, about the crop's centre; a neighbour's are elsewhere.
        eyes = np.array([0.5 * w, 0.47 * h]) + offset
        return MeshObservation(mesh=nearest_mesh(found, eyes) - offset, person=seen)

    def parse(self, image: np.ndarray) -> FaceMask:
        return FaceMask(labels=self.labels_from(image, self.observe(image)), parser=self.name)

    # -- the heuristics ------------------------------------------------------------------------------------
    def labels_from(self, image: np.ndarray, obs: MeshObservation) -> np.ndarray:
        """Canonical labels from the image and what the models saw in it. Colour heuristics run at
        WORK_SIZE and are resized; polygons and the person mask keep the input's resolution."""
        import cv2

        h, w = image.shape[:2]
        f = min(1.0, WORK_SIZE / max(h, w))
        if f < 1:
            size = (max(1, round(w * f)), max(1, round(h * f)))
            small = cv2.resize(image[..., :3], size, interpolation=cv2.INTER_AREA)
            person_small = cv2.resize(obs.person, size, interpolation=cv2.INTER_LINEAR)
        else:
            small, person_small = image[..., :3], obs.person
        regions = _Regions(small, obs.mesh * f, person_small)
        hair, ears, neck = regions.hair(self.grabcut_iterations), regions.ears(), regions.neck()
        forehead = regions.forehead_skin()
        covering = regions.is_patterned(hair)
        if f < 1:
            up = lambda m: cv2.resize(m.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) > 0.5  # noqa: E731
            hair, ears, neck, forehead = up(hair), up(ears), up(neck), up(forehead)

        mesh, shape, L = obs.mesh, (h, w), LABEL_INDEX
        face_w = _face_width(mesh)
        oval = _fill(shape, mesh[list(FACE_OVAL)])
        person = obs.person > 0.5
        out = np.zeros(shape, np.uint8)
        out[person] = L["cloth"]
        out[neck] = L["neck"]
        nose_x = mesh[NOSE_TIP, 0]
        xx = np.arange(w)[None, :]
        out[ears & (xx < nose_x)] = L["l_ear"]
        out[ears & (xx >= nose_x)] = L["r_ear"]
        out[oval | forehead] = L["skin"]
        out[hair] = L["hat" if covering else "hair"]
        for name, part in _parts(mesh, shape, face_w).items():
            out[part] = L[name]
        return out


WORK_SIZE = 256
NOSE_TIP = 4
# Selfie-segmentation confidence: above PERSON_LOOSE a pixel may be hair, above PERSON_SURE it may seed hair.
PERSON_LOOSE = 0.7
PERSON_SURE = 0.85
PATTERNED = 30.0  # see _Regions.is_patterned
PART_GROW = 0.005  # brows and lips are drawn this much (× face width) wider than the mesh outline


def _face_width(mesh: np.ndarray) -> float:
    return float(np.linalg.norm(mesh[CHEEK_SIDES[0]] - mesh[CHEEK_SIDES[1]]))


def _parts(mesh: np.ndarray, shape: tuple[int, int], face_w: float) -> dict[str, np.ndarray]:
    """Face-part masks from the mesh polygons, in painting order, l_/r_ by image side."""
    pick = lambda idx: mesh[list(idx)]  # noqa: E731
    grow = PART_GROW * face_w
    parts = {
        "nose": _fill(shape, pick(NOSE_POINTS), hull=True),
        "l_brow": _dilate(_fill(shape, pick(BROW_IMAGE_LEFT)), grow),
        "r_brow": _dilate(_fill(shape, pick(BROW_IMAGE_RIGHT)), grow),
        "l_eye": _fill(shape, pick(EYE_IMAGE_LEFT)),
        "r_eye": _fill(shape, pick(EYE_IMAGE_RIGHT)),
        "u_lip": _dilate(_fill(shape, pick(UPPER_LIP)), grow),
        "l_lip": _dilate(_fill(shape, pick(LOWER_LIP)), grow),
        "mouth": _fill(shape, pick(INNER_MOUTH)),
    }
    if mesh[EYE_IMAGE_LEFT[0], 0] > mesh[EYE_IMAGE_RIGHT[0], 0]:  # a mirrored mesh: image-left stays l_
        parts["l_eye"], parts["r_eye"] = parts["r_eye"], parts["l_eye"]
        parts["l_brow"], parts["r_brow"] = parts["r_brow"], parts["l_brow"]
    return parts


def _colour_distance(lab: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """Per-pixel RMS of the Lab distance in standard deviations."""
    return np.sqrt((((lab - mu) / sd) ** 2).sum(-1) / 3.0)


def _colour_model(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.median(pixels, axis=0), np.maximum(pixels.std(axis=0), (4.0, 2.5, 2.5))


class _Regions:
    """Hair, ears, neck and the forehead above the mesh, for one image at the working resolution."""

    def __init__(self, image: np.ndarray, mesh: np.ndarray, person: np.ndarray):
        import cv2

        self.image, self.mesh, self.person_p = image, mesh, person
        h, w = image.shape[:2]
        self.shape = (h, w)
        self.fw = _face_width(mesh)
        self.yy, self.xx = np.mgrid[0:h, 0:w]
        self.oval = _fill(self.shape, mesh[list(FACE_OVAL)])
        # Distance (px) outside the oval: "within r of the face" is one comparison, not a dilation.
        self.out_dist = cv2.distanceTransform((~self.oval).astype(np.uint8), cv2.DIST_L2, 3)
        self.in_dist = cv2.distanceTransform(self.oval.astype(np.uint8), cv2.DIST_L2, 3)
        self.lab = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB).astype(np.float32)
        self.any_part = np.zeros(self.shape, bool)
        for part in _parts(mesh, self.shape, self.fw).values():
            self.any_part |= part
        self.chin_y = float(mesh[CHIN, 1])
        self.eye_y = float(mesh[[468, 473], 1].mean())
        self.mouth_y = float(mesh[[13, 14], 1].mean())
        self.brow_y = float(mesh[list(BROW_IMAGE_LEFT + BROW_IMAGE_RIGHT), 1].mean())
        self.cx = float(mesh[NOSE_TIP, 0])
        # Skin colour from the cheeks: inside the oval, away from every part, between eyes and mouth.
        near_part = cv2.distanceTransform((~self.any_part).astype(np.uint8), cv2.DIST_L2, 3) < 0.04 * self.fw
        cheeks = (self.in_dist > 0.04 * self.fw) & ~near_part & (self.yy > self.eye_y) & (self.yy < self.mouth_y)
        if cheeks.sum() < 20:
            cheeks = self.oval & ~self.any_part
        if not cheeks.any():
            cheeks = np.ones(self.shape, bool)
        self.skin_d = _colour_distance(self.lab, *_colour_model(self.lab[cheeks]))
        self.person = person > 0.5
        self._hair: np.ndarray | None = None

    def hair(self, iterations: int = 4) -> np.ndarray:
        """Hair: GrabCut among confident person pixels, seeded by where hair nearly always is."""
        import cv2

        if self._hair is not None:
            return self._hair
        oval, yy, xx, fw = self.oval, self.yy, self.xx, self.fw
        person = self.person_p > PERSON_SURE
        loose = self.person_p > PERSON_LOOSE
        outside = loose & ~oval
        skinlike = self.skin_d < 2.5
        gc = np.full(self.shape, cv2.GC_BGD, np.uint8)
        gc[outside & (yy < self.chin_y + 0.1 * fw)] = cv2.GC_PR_FGD
        gc[outside & (yy >= self.chin_y + 0.1 * fw)] = cv2.GC_PR_BGD
        # Beside and above the face, a person pixel that is not skin is hair in nearly every portrait.
        away = self.out_dist > 0.03 * fw
        far_side = (self.out_dist > 0.12 * fw) & (yy > self.brow_y)
        gc[outside & person & away & (yy < self.mouth_y) & (~skinlike | far_side)] = cv2.GC_FGD
        # Forehead and temples inside the mesh outline may be hair (bangs, hair over the temples) or skin.
        temples = (yy < self.eye_y) & (np.abs(xx - self.cx) > 0.3 * fw)
        gc[oval & ((yy < self.brow_y) | temples)] = cv2.GC_PR_BGD
        gc[outside & skinlike & (self.out_dist <= 0.1 * fw)] = cv2.GC_PR_BGD
        # A ring just above the face outline is hair unless it looks like skin (a bald head).
        ring = (self.out_dist > 0.03 * fw) & (self.out_dist <= 0.22 * fw) & \
            (yy < self.mesh[FOREHEAD_TOP, 1] + 0.15 * fw)
        gc[ring & person & (self.skin_d > 3.0)] = cv2.GC_FGD
        # Near-certain not-hair: the middle of the face below the brows, the parts, the body below the chin.
        gc[oval & (yy > self.brow_y + 0.05 * fw) & (np.abs(xx - self.cx) < 0.3 * fw)] = cv2.GC_BGD
        gc[self.any_part] = cv2.GC_BGD
        body = person & (yy > self.chin_y + 0.35 * fw) & (np.abs(xx - self.mesh[CHIN, 0]) < 0.35 * fw)
        gc[body] = cv2.GC_BGD
        gc[~loose] = cv2.GC_BGD
        if not np.isin(gc, (cv2.GC_FGD, cv2.GC_PR_FGD)).any():
            self._hair = np.zeros(self.shape, bool)
            return self._hair
        # The backdrop is painted one flat colour so that the not-hair colour model spends itself on skin and
        # clothes, not on a backdrop that may match the hair.
        work = np.ascontiguousarray(self.image[..., ::-1]).copy()
        work[~_dilate(loose, 2)] = (255, 0, 255)
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)
        cv2.grabCut(work, gc, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
        hair = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
        hair = self._trim_low_hair(hair, body)
        hair = _largest_components(hair, 0.05)
        hair = _fill_holes(hair, int(0.002 * hair.size))
        hair &= ~(oval & (self.skin_d < 2.0))  # a skin-coloured forehead stays skin
        self._hair = hair
        return hair

    def is_patterned(self, hair: np.ndarray) -> bool:
        """True when the "hair" is a patterned head covering (a checked or printed scarf): its lightness varies
        far more over a few pixels than hair does. Median local deviation of L over 0.08 face widths: 6-18 on
        hair of every colour, curls and highlights included, 49 on a checked headscarf."""
        import cv2

        if hair.sum() < 100:
            return False
        k = max(3, int(0.08 * self.fw) | 1)
        light = self.lab[..., 0]
        mean = cv2.blur(light, (k, k))
        sd = np.sqrt(np.maximum(cv2.blur(light * light, (k, k)) - mean * mean, 0))
        return float(np.median(sd[hair])) > PATTERNED

    def _trim_low_hair(self, hair: np.ndarray, body: np.ndarray) -> np.ndarray:
        """Below the mouth, keep only hair whose colour matches the hair above it (not clothes)."""
        yy = self.yy
        top = hair & (yy < self.mouth_y)
        if top.sum() < 50:
            return hair
        d_hair = _colour_distance(self.lab, *_colour_model(self.lab[top]))
        low = (yy >= self.mouth_y) & ~self.oval
        return (hair & ~low) | (hair & low & ~body & (d_hair < 3.5))

    def ears(self) -> np.ndarray:
        """Skin-coloured person pixels just beside the face between brows and nose."""
        rest = self.person & ~self.oval & ~self.hair()
        return rest & (self.skin_d < 3.0) & (self.out_dist <= 0.12 * self.fw) & (self.yy > self.brow_y) & \
            (self.yy < float(self.mesh[2, 1]) + 0.1 * self.fw)

    def neck(self) -> np.ndarray:
        """Skin-coloured person pixels below the jaw, within the jaw's width."""
        jaw_l, jaw_r = self.mesh[JAW_SIDES[0]], self.mesh[JAW_SIDES[1]]
        fw = self.fw
        band = (self.xx > jaw_l[0] - 0.05 * fw) & (self.xx < jaw_r[0] + 0.05 * fw) & \
            (self.yy > jaw_l[1] - 0.1 * fw) & (self.yy < self.chin_y + 0.9 * fw)
        neck = self.person & ~self.oval & ~self.hair() & band & (self.skin_d < 3.0)
        return _largest_components(neck, 0.2) if neck.any() else neck

    def forehead_skin(self) -> np.ndarray:
        """Skin-coloured person pixels above the brows just outside the mesh (a high hairline)."""
        return self.person & ~self.hair() & (self.skin_d < 3.0) & (self.out_dist <= 0.2 * self.fw) & \
            (self.yy < self.brow_y)
