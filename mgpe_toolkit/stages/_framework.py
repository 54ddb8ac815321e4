"""Shared by the learned stages (`mgpe` encode/generate/fuse): one loaded framework per weights file, and the
conversions between uint8 images / label masks and the network's tensors at its resolution."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..weights import describe_search, find_weights
from ..weights import weights_problem as _weights_problem

WEIGHTS_NAME = "mgpe-gan.safetensors"


def weights_problem(weights: str | Path | None = None) -> str | None:
    return _weights_problem(WEIGHTS_NAME, "train with `mgpe train`, or pass --weights", weights)


def resolve(weights: str | Path | None) -> Path:
    path = Path(weights) if weights else find_weights(WEIGHTS_NAME)
    if path is None:
        raise InputError(WEIGHTS_NAME, describe_search(WEIGHTS_NAME))
    return path.resolve()


@lru_cache(maxsize=4)
def framework(path: Path, device: str = "cpu"):
    from ..train.gan import load_generator

    return load_generator(path, device)


def to_tensor(image: np.ndarray, size: int):
    import cv2
    import torch

    if image.shape[0] != size:
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR)
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float().div(127.5).sub(1)


def mask_at(labels: np.ndarray, size: int) -> np.ndarray:
    import cv2

    return labels if labels.shape[0] == size else cv2.resize(labels, (size, size), interpolation=cv2.INTER_NEAREST)


def to_image(t, size: int) -> np.ndarray:
    import cv2

    img = ((t[0].detach().float().clamp(-1, 1).permute(1, 2, 0).cpu().numpy() + 1) * 127.5 + 0.5).astype(np.uint8)
    return img if img.shape[0] == size else cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC)
