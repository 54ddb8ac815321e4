"""Paired reconstruction metrics (x_s = x_t): PSNR, SSIM (scikit-image) and L1, overall and per component."""
from __future__ import annotations

import numpy as np

from ..labels import COMPONENTS, component_mask


def psnr(a: np.ndarray, b: np.ndarray, region: np.ndarray | None = None) -> float:
    diff = (a.astype(np.float64) - b.astype(np.float64))
    diff = diff[region] if region is not None else diff
    mse = float(np.mean(diff ** 2)) if diff.size else float("nan")
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def l1(a: np.ndarray, b: np.ndarray, region: np.ndarray | None = None) -> float:
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64)) / 255.0
    diff = diff[region] if region is not None else diff
    return float(diff.mean()) if diff.size else float("nan")


def ssim(a: np.ndarray, b: np.ndarray, region: np.ndarray | None = None) -> float:
    from skimage.metrics import structural_similarity

    value, full = structural_similarity(a, b, channel_axis=-1, data_range=255, full=True)
    if region is None:
        return float(value)
    return float(full.mean(-1)[region].mean()) if region.any() else float("nan")


def reconstruction_scores(result: np.ndarray, reference: np.ndarray, mask: np.ndarray | None = None) -> dict:
    """{"overall": {psnr, ssim, l1}, component: {...}} (components only when a mask is given)."""
    out = {"overall": {"psnr": psnr(result, reference), "ssim": ssim(result, reference), "l1": l1(result, reference)}}
    if mask is not None:
        for name in COMPONENTS:
            region = component_mask(mask, name)
            if region.any():
                out[name] = {"psnr": psnr(result, reference, region), "ssim": ssim(result, reference, region),
                             "l1": l1(result, reference, region)}
    return out
