"""Where weights are found: never downloaded, only looked up.

Search order: an explicit path, then each folder in $MGPE_MODELS (os.pathsep-separated), then the
repository's `models/` folder (present in a source checkout / editable install).
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_MODELS = Path(__file__).resolve().parents[1] / "models"


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
