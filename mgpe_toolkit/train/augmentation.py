"""Parser training windows, and the photometric damage of photos in the wild.

`window` cuts the size² training input out of a sample: at the aligned framing, or (augmenting) with the face
zoomed out to show the context a photo has around its aligned crop, rotated and shifted. `wild` then does to
the window what cameras, editors and the web do to photos: colour casts, greyscale, blur, low resolution,
JPEG, noise, and things in front of the face. Both draw from the step's random stream, so a resumed run sees
the same batches. Pixels a transform invents (outside the sample, under an occluder) are IGNORE in the mask.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..labels import IGNORE

AUGMENTS = ("none", "wild")


@dataclass(frozen=True)
class WindowJitter:
    # Face scale in the window relative to the aligned crop: 0.7 shows the context that `mgpe parse` gives the
    # parser around a photo's face (see parse.CONTEXT), 1 is the aligned crop itself.
    scale: tuple[float, float] = (0.66, 1.12)
    degrees: float = 12.0
    shift: float = 0.05  # × window side


def window(image: np.ndarray, mask: np.ndarray, context: float, size: int, rng: np.random.Generator | None = None,
           jitter: WindowJitter = WindowJitter()) -> tuple[np.ndarray, np.ndarray]:
    """(size², 3) image and (size², ) mask of a sample whose frame is `context` × the aligned crop. Without
    `rng`, the aligned crop itself; with it, a random zoom, rotation and shift about the face centre."""
    import cv2

    n = image.shape[0]
    k = size * context / n  # sample pixels -> window pixels at the aligned framing
    s, angle, t = 1.0, 0.0, np.zeros(2)
    if rng is not None:
        s = float(np.exp(rng.uniform(*np.log(jitter.scale))))
        angle = float(rng.uniform(-jitter.degrees, jitter.degrees))
        t = rng.uniform(-jitter.shift, jitter.shift, 2) * size
    f = k * s
    if f < 0.7:  # shrink with area averaging first: warpAffine's bilinear samples alias
        m = max(1, round(n * f / 0.9))
        image = cv2.resize(image, (m, m), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask, (m, m), interpolation=cv2.INTER_NEAREST)
        f, n = f * n / m, m
    a = np.deg2rad(angle)
    rot = f * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    centre = np.array([n / 2, n / 2])
    matrix = np.hstack([rot, (size / 2 + t - rot @ centre)[:, None]])
    if f == 1.0 and angle == 0 and not t.any() and n == size:
        return image, mask
    out = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    labels = cv2.warpAffine(mask, matrix, (size, size), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=IGNORE)
    return out, labels


def wild(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Photometric damage and occluders, each with its own probability; returns new arrays."""
    import cv2

    img = image.astype(np.float32)
    mask = mask.copy()
    h, w = mask.shape
    if rng.random() < 0.8:  # exposure, contrast, gamma, colour cast, saturation
        img = img * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25)
        mean = img.mean()
        img = (img - mean) * rng.uniform(0.7, 1.3) + mean
        img = 255 * (np.clip(img, 0, 255) / 255) ** rng.uniform(0.7, 1.4)
        img = img * rng.uniform(0.88, 1.12, 3)
        grey = img.mean(-1, keepdims=True)
        img = grey + (img - grey) * rng.uniform(0.5, 1.4)
    if rng.random() < 0.2:  # black-and-white photos
        img = np.repeat((np.clip(img, 0, 255) @ np.array([0.299, 0.587, 0.114]))[..., None], 3, -1)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.25:  # focus
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.8))
    if rng.random() < 0.2:  # low resolution, scaled up
        f = rng.uniform(0.3, 0.7)
        small = cv2.resize(img, (max(8, round(w * f)), max(8, round(h * f))), interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.2:  # sensor noise
        img = np.clip(img + rng.normal(0, rng.uniform(2, 8), img.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.3:  # JPEG
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 90))])
        if ok:
            img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).reshape(img.shape)
    if rng.random() < 0.25:  # a hand, a microphone, a shoulder: a blob of colour or of the photo elsewhere
        blob = np.zeros((h, w), np.uint8)
        cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.3, 1.0) * h
        ax, ay = rng.uniform(0.05, 0.2, 2) * (w, h)
        cv2.ellipse(blob, (int(cx), int(cy)), (int(ax), int(ay)), float(rng.uniform(0, 180)), 0, 360, 1, -1)
        on = blob.astype(bool)
        if rng.random() < 0.5:
            img[on] = rng.integers(0, 256, 3).astype(np.uint8)
        else:
            dy, dx = rng.integers(-h // 2, h // 2), rng.integers(-w // 2, w // 2)
            img[on] = np.roll(img, (dy, dx), (0, 1))[on]
        mask[on] = IGNORE
    return np.ascontiguousarray(img), mask
