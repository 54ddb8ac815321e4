"""Seeded procedural portraits with their exact canonical masks: ground truth for tests and tiny training runs.

The mask is drawn first, layer by layer (painter's order); the image is then painted from the mask, so every
pixel's label is known exactly. Faces sit near the alignment template with some jitter, and the five
landmarks are returned too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..labels import LABEL_INDEX as L


@dataclass
class SyntheticPortrait:
    image: np.ndarray  # (S, S, 3) uint8
    mask: np.ndarray  # (S, S) uint8 canonical labels
    landmarks: np.ndarray  # (5, 2): l eye, r eye, nose tip, l mouth corner, r mouth corner
    seed: int


def _ellipse(canvas, centre, axes, value, angle=0.0, thickness=-1, arc=(0, 360)):
    import cv2

    cv2.ellipse(canvas, (int(round(centre[0] * 16)), int(round(centre[1] * 16))),
                (max(1, int(round(axes[0] * 16))), max(1, int(round(axes[1] * 16)))),
                angle, arc[0], arc[1], int(value), thickness, cv2.LINE_8, 4)


def _poly(canvas, points, value):
    import cv2

    pts = np.round(np.asarray(points, dtype=np.float64) * 16).astype(np.int32)
    cv2.fillPoly(canvas, [pts], int(value), cv2.LINE_8, 4)


def synthetic_portrait(seed: int, size: int = 256, *, glasses: bool | None = None, hat: bool | None = None,
                       earrings: bool | None = None, necklace: bool | None = None,
                       open_mouth: bool | None = None) -> SyntheticPortrait:
    """Draw one portrait. Options left as None are drawn at random from the seed."""
    rng = np.random.default_rng(seed)
    pick = lambda v, p: bool(rng.random() < p) if v is None else bool(v)  # noqa: E731
    glasses, hat, earrings = pick(glasses, 0.3), pick(hat, 0.25), pick(earrings, 0.35)
    necklace, open_mouth = pick(necklace, 0.35), pick(open_mouth, 0.5)
    s = size / 256.0
    j = lambda sd: rng.normal(0, sd)  # noqa: E731
    m = np.zeros((size, size), dtype=np.uint8)

    cx, eye_y = 128 + j(3), 120 + j(3)
    eye_dx = 31.5 + j(1.5)
    face_w, face_h = 58 + j(3), 78 + j(3)
    face_cy = eye_y + 22 + j(2)
    hair_style = rng.integers(3)  # 0 short, 1 long, 2 bob
    # Hair behind the head.
    if hair_style == 1:
        _poly(m, [(cx - face_w - 14, face_cy - 40), (cx + face_w + 14, face_cy - 40),
                  (cx + face_w + 22, 250), (cx - face_w - 22, 250)], L["hair"])
    _ellipse(m, (cx * s, (face_cy - 22) * s), ((face_w + 12 + 8 * (hair_style == 2)) * s, (face_h + 8) * s),
             L["hair"])
    # Shoulders and neck.
    shoulder_y = face_cy + face_h + 18 + j(3)
    _ellipse(m, (cx * s, (shoulder_y + 60) * s), (118 * s, 66 * s), L["cloth"])
    m[int(min(size, (shoulder_y + 60) * s)):] = L["cloth"]
    neck_w = 26 + j(2)
    _poly(m, [((cx - neck_w) * s, (face_cy + 30) * s), ((cx + neck_w) * s, (face_cy + 30) * s),
              ((cx + neck_w + 3) * s, (shoulder_y + 8) * s), ((cx - neck_w - 3) * s, (shoulder_y + 8) * s)], L["neck"])
    if necklace:
        _ellipse(m, (cx * s, (shoulder_y - 8) * s), ((neck_w + 4) * s, 14 * s), L["neck_l"],
                 thickness=max(1, int(round(3 * s))), arc=(15, 165))
    # Ears, earrings, face.
    ear_y = eye_y + 12
    for side, label in ((-1, L["l_ear"]), (1, L["r_ear"])):
        ex = cx + side * (face_w + 2)
        _ellipse(m, (ex * s, ear_y * s), (8 * s, 15 * s), label)
        if earrings:
            _ellipse(m, (ex * s, (ear_y + 19) * s), (3.5 * s, 3.5 * s), L["ear_r"])
    _ellipse(m, (cx * s, face_cy * s), (face_w * s, face_h * s), L["skin"])
    # Fringe: hair over the top of the face, down to a hairline.
    hairline = eye_y - 30 - rng.uniform(0, 14)
    top = np.zeros_like(m)
    _ellipse(top, (cx * s, (face_cy - 22) * s), ((face_w + 12) * s, (face_h + 8) * s), 1)
    rows = np.arange(size)[:, None] / s
    wave = 4 * np.sin(np.arange(size)[None, :] / s / 9 + seed)
    m[(top == 1) & (rows < hairline + wave) & (m == L["skin"])] = L["hair"]
    # Brows, eyes, nose, mouth.
    eye_w, eye_h = 11 + j(1), 5 + abs(j(0.8))
    for side, brow, eye in ((-1, L["l_brow"], L["l_eye"]), (1, L["r_brow"], L["r_eye"])):
        ex = cx + side * eye_dx
        by = eye_y - 13 + j(1)
        _poly(m, [((ex - 14) * s, (by + 2) * s), ((ex - 4) * s, (by - 3) * s), ((ex + 14) * s, (by - 1) * s),
                  ((ex + 14) * s, (by + 3) * s), ((ex - 4) * s, (by + 1) * s), ((ex - 14) * s, (by + 5) * s)], brow)
        _ellipse(m, (ex * s, eye_y * s), (eye_w * s, eye_h * s), eye)
    nose_y = eye_y + 37 + j(1.5)
    _poly(m, [((cx - 3) * s, (eye_y + 6) * s), ((cx + 3) * s, (eye_y + 6) * s), ((cx + 10) * s, nose_y * s),
              (cx * s, (nose_y + 4) * s), ((cx - 10) * s, nose_y * s)], L["nose"])
    mouth_y = eye_y + 65 + j(1.5)
    mouth_w = 25 + j(2)
    gap = (3 + rng.uniform(0, 4)) if open_mouth else 0.0
    _poly(m, [((cx - mouth_w) * s, mouth_y * s), ((cx - 8) * s, (mouth_y - 7) * s), (cx * s, (mouth_y - 5) * s),
              ((cx + 8) * s, (mouth_y - 7) * s), ((cx + mouth_w) * s, mouth_y * s)], L["u_lip"])
    _poly(m, [((cx - mouth_w) * s, mouth_y * s), ((cx + mouth_w) * s, mouth_y * s),
              ((cx + 10) * s, (mouth_y + 9 + gap) * s), ((cx - 10) * s, (mouth_y + 9 + gap) * s)], L["l_lip"])
    if open_mouth:
        _ellipse(m, (cx * s, (mouth_y + gap / 2) * s), ((mouth_w - 6) * s, (gap / 2 + 1) * s), L["mouth"])
    if glasses:
        for side in (-1, 1):
            _ellipse(m, ((cx + side * eye_dx) * s, eye_y * s), (17 * s, 12 * s), L["eye_g"],
                     thickness=max(1, int(round(3 * s))))
        _poly(m, [((cx - eye_dx + 16) * s, (eye_y - 3) * s), ((cx + eye_dx - 16) * s, (eye_y - 3) * s),
                  ((cx + eye_dx - 16) * s, (eye_y - 1) * s), ((cx - eye_dx + 16) * s, (eye_y - 1) * s)], L["eye_g"])
    if hat:
        hat_y = hairline - 6
        _ellipse(m, (cx * s, hat_y * s), ((face_w + 30) * s, 10 * s), L["hat"])
        _ellipse(m, (cx * s, hat_y * s), ((face_w + 6) * s, (face_h - 10) * s), L["hat"], arc=(180, 360))

    image = _paint(m, rng, size)
    landmarks = np.array([(cx - eye_dx, eye_y), (cx + eye_dx, eye_y), (cx, nose_y + 4),
                          (cx - mouth_w, mouth_y), (cx + mouth_w, mouth_y)]) * s
    return SyntheticPortrait(image=image, mask=m, landmarks=landmarks, seed=seed)


def _paint(mask: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Colour each class with a seeded palette, soft shading and noise; irises drawn inside the eyes."""
    skin = np.array([rng.uniform(120, 235), 0, 0])
    skin[1] = skin[0] * rng.uniform(0.68, 0.82)
    skin[2] = skin[1] * rng.uniform(0.72, 0.9)
    hair = rng.choice([(40, 28, 20), (90, 60, 30), (180, 140, 80), (20, 20, 22), (150, 60, 30), (200, 200, 200)])
    palette = {
        0: rng.uniform(60, 230, 3), L["skin"]: skin, L["nose"]: skin * 0.93, L["l_ear"]: skin * 0.95,
        L["r_ear"]: skin * 0.95, L["l_brow"]: np.array(hair) * 0.8, L["r_brow"]: np.array(hair) * 0.8,
        L["l_eye"]: (235, 235, 230), L["r_eye"]: (235, 235, 230), L["eye_g"]: rng.uniform(10, 80, 3),
        L["mouth"]: (90, 25, 30), L["u_lip"]: (skin[0] * 0.85, skin[1] * 0.5, skin[2] * 0.55),
        L["l_lip"]: (skin[0] * 0.9, skin[1] * 0.55, skin[2] * 0.6), L["hair"]: hair,
        L["hat"]: rng.uniform(20, 220, 3), L["ear_r"]: (230, 200, 60), L["neck_l"]: (220, 220, 225),
        L["neck"]: skin * 0.88, L["cloth"]: rng.uniform(20, 220, 3),
    }
    lut = np.zeros((256, 3), dtype=np.float64)
    for k, v in palette.items():
        lut[k] = v
    img = lut[mask]
    yy, xx = np.mgrid[0:size, 0:size] / size
    shade = 1.0 + 0.12 * (0.5 - yy) + 0.06 * np.cos(3 * (xx - 0.5))
    img = img * shade[..., None] + rng.normal(0, 4, img.shape)
    hair_px = mask == L["hair"]
    img[hair_px] += (18 * np.sin(xx[hair_px] * size / 3 + 5 * yy[hair_px]))[:, None]  # strands
    eyes = np.isin(mask, [L["l_eye"], L["r_eye"]])
    if eyes.any():
        from scipy import ndimage

        labelled, n = ndimage.label(eyes)
        iris = rng.uniform(30, 120, 3)
        for cy, cx in ndimage.center_of_mass(eyes, labelled, range(1, n + 1)):
            r = (yy * size - cy) ** 2 + (xx * size - cx) ** 2 <= (4.2 * size / 256) ** 2
            img[r & eyes] = iris
    return np.clip(img, 0, 255).astype(np.uint8)
