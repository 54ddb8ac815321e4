"""Where weights are found: never downloaded, only looked up.

Search order: an explicit path, then each folder in $MGPE_MODELS (os.pathsep-separated), then the shipped
`models/` folder: installed as the `mgpe_models` package (wheel or editable install), or the checkout's own.
"""
from __future__ import annotations

import os
from pathlib import Path


def _shipped_models() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("mgpe_models")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[1] / "models"  # a checkout run without installing


REPO_MODELS = _shipped_models()


def model_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get("MGPE_MODELS", "").split(os.pathsep) if p]
    return dirs + [REPO_MODELS]


def find_weights(filename: str) -> Path | None:
    for folder in model_dirs():
        candidate = folder / filename
        if candidate.is_file():
            return candidate
    return None


def describe_search(filename: str) -> str:
    return f"no {filename} in " + ", ".join(str(d) for d in model_dirs())


def weights_problem(filename: str, hint: str, weights: str | os.PathLike | None = None) -> str | None:
    """None when explicit `weights` exist, or `filename` is found in the search path; else why not."""
    if weights is not None:
        return None if Path(weights).is_file() else f"weights {weights} not found"
    return None if find_weights(filename) is not None else f"{describe_search(filename)} ({hint})"


def file_digest(path: str | os.PathLike) -> str:
    """The first 16 hex digits of a file's SHA-256: how cards, manifests and caches name weights."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def read_safetensors(path: str | os.PathLike, network: str | None = None):
    """(tensors, metadata) of a safetensors file; InputError naming the file when it is unreadable or, with
    `network`, when its metadata does not say it holds that network."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    from .errors import InputError

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise InputError(path, f"not a readable safetensors file ({exc})") from None
    bad = next((k for k, v in tensors.items() if v.is_floating_point() and not bool(v.isfinite().all())), None)
    if bad is not None:
        raise InputError(path, f"{bad} holds NaN or inf: weights of a training run that diverged")
    if network is not None and meta.get("network") != network:
        raise InputError(path, f"not {network} weights (its metadata says network={meta.get('network')!r})")
    return tensors, meta
