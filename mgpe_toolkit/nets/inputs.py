"""What the networks take, made from label masks and images: component crops, regions, centres, dilation.

Free of torch: the ONNX path (`mgpe batch`, a Ray actor) builds its inputs with numpy alone and never pays
torch's import. The crop and region helpers take numpy arrays or torch tensors alike (training passes tensors)
and return the same kind.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..labels import COMPONENTS, NUM_CLASSES, component_center, crop_box

if TYPE_CHECKING:
    from .config import GANConfig

COMPONENT_NAMES = tuple(COMPONENTS)  # left_eye, right_eye, mouth, skin, hair
PLACED = tuple(n for n in COMPONENT_NAMES if COMPONENTS[n].crop_256 is not None)  # eyes and mouth
FULL = tuple(n for n in COMPONENT_NAMES if COMPONENTS[n].crop_256 is None)  # skin and hair
DILATED = (("l_eye",), ("r_eye",), ("u_lip", "mouth", "l_lip"))


def _table(names) -> np.ndarray:
    """(256,) bool: True at the labels of the named components."""
    keep = np.zeros(256, bool)
    for name in names:
        keep[list(COMPONENTS[name].indices)] = True
    return keep


_FOREGROUND = _table(COMPONENT_NAMES)


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _region(table: np.ndarray, masks):
    """(N, 1, S, S) bool where `table` holds for the (N, S, S) labels; numpy or torch, as `masks`."""
    if _is_torch(masks):
        import torch

        return torch.from_numpy(table).to(masks.device)[masks.long()].unsqueeze(1)
    return table[np.asarray(masks, np.intp)][:, None]


def foreground_region(masks):
    """(N, 1, S, S) float: 1 on the five components (what the fusing net repaints), 0 on the background."""
    region = _region(_FOREGROUND, masks)
    return region.float() if _is_torch(region) else region.astype(np.float32)


def component_region(masks, name: str):
    """(N, 1, S, S) float: 1 on a component's labels."""
    region = _region(_table([name]), masks)
    return region.float() if _is_torch(region) else region.astype(np.float32)


def _keep(images, region):
    """`images` where `region`, zero elsewhere."""
    if _is_torch(images):
        import torch

        return torch.where(region, images, torch.zeros_like(images))
    return np.where(region, images, np.zeros((), images.dtype))


def centres_of(masks: np.ndarray) -> np.ndarray:
    """(N, 3, 2) float32 image-pixel centres of eyes and mouth (template fallback when absent)."""
    return np.array([[component_center(m, name) for name in PLACED] for m in masks], np.float32)


def input_spec(config: GANConfig) -> dict:
    """How a model's inputs are prepared (edit_inputs takes these): the paper arch masks the mouth crop to the
    mouth's labels, and may dilate eyes and mouth of every mask."""
    return {"masked_mouth": config.arch == "paper", "dilate": float(config.dilate)}


def dilate_components(labels: np.ndarray, factor: float) -> np.ndarray:
    """(S, S) or (N, S, S) labels with each eye and the mouth grown to the union with a copy of itself scaled by
    `factor` about its bounding-box centre (the authors' 1.1× dilation); other labels give way."""
    import cv2

    from ..labels import LABEL_INDEX

    if factor == 1.0:
        return labels
    if labels.ndim == 3:
        return np.stack([dilate_components(m, factor) for m in labels])
    out = labels.copy()
    for names in DILATED:
        part = np.isin(labels, [LABEL_INDEX[n] for n in names])
        if not part.any():
            continue
        ys, xs = np.nonzero(part)
        cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
        m = np.array([[factor, 0, cx * (1 - factor)], [0, factor, cy * (1 - factor)]], np.float64)
        grown = cv2.warpAffine(np.where(part, labels, 0).astype(np.uint8), m, labels.shape[::-1],
                               flags=cv2.INTER_NEAREST)
        out = np.where((grown > 0) & ~part, grown, out)
    return out.astype(labels.dtype)


def component_crops(images, masks, centres: np.ndarray, *, masked_mouth: bool = False,
                    face: bool = False) -> dict:
    """The five inputs of the local embedding: fixed windows for eyes and mouth (the mouth's masked to its labels
    with `masked_mouth`, as the paper arch takes it), masked full images for skin/hair. (N, 3, S, S) images and
    (N, S, S) masks, numpy or torch."""
    if _is_torch(images):
        from torch import stack
    else:
        stack = np.stack
    n, _, s, _ = images.shape
    crops = {}
    for k, name in enumerate(PLACED):
        w, h = COMPONENTS[name].crop_size(s)
        boxes = [crop_box(tuple(centres[i, k]), (w, h), (s, s)) for i in range(n)]
        source = _keep(images, _region(_table([name]), masks)) if masked_mouth and name == "mouth" else images
        crops[name] = stack([source[i, :, y0:y1, x0:x1] for i, (x0, y0, x1, y1) in enumerate(boxes)])
    for name in FULL:
        crops[name] = _keep(images, _region(_table([name]), masks))
    if face:  # the whole face and hair, for the one encoder of the `embedding=global` ablation
        crops["face"] = _keep(images, _region(_FOREGROUND, masks))
    return crops


def edit_inputs(images: list[np.ndarray], masks: list[np.ndarray], targets: list[np.ndarray], size: int, *,
                masked_mouth: bool = False, dilate: float = 1.0):
    """What the learned stages take for a batch of aligned faces: crops of `images` (uint8 RGB) under their own
    `masks`, and `targets` (edited masks) as the masks to paint. Everything is brought to `size` first; the
    keywords are the model's input_spec. Returns (crops, target one-hot, target centres, removal mask, target
    images), numpy, images in [-1, 1]."""
    import cv2

    def img(a):
        if a.shape[0] != size:
            a = cv2.resize(a, (size, size), interpolation=cv2.INTER_AREA if a.shape[0] > size else cv2.INTER_LINEAR)
        return a.astype(np.float32) / 127.5 - 1

    def lab(m):
        return m if m.shape[0] == size else cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST)

    x = np.ascontiguousarray(np.stack([img(a) for a in images]).transpose(0, 3, 1, 2))
    src = dilate_components(np.stack([lab(m) for m in masks]), dilate)
    crops = component_crops(x, src, centres_of(src), masked_mouth=masked_mouth)
    tgt = dilate_components(np.stack([lab(m) for m in targets]), dilate)
    one = np.eye(NUM_CLASSES, dtype=np.float32)[tgt].transpose(0, 3, 1, 2)
    return {n: np.ascontiguousarray(c) for n, c in crops.items()}, one, centres_of(tgt), foreground_region(tgt), x
