"""mgpe: mask-guided portrait editing (Gu et al., CVPR 2019) as a toolkit.

The public API is imported lazily so `import mgpe_toolkit` and `mgpe --help` stay fast.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Pipeline": "pipeline",
    "read_image": "io", "write_image": "io", "read_mask": "io", "write_mask": "io", "list_images": "io",
    "LABELS": "labels", "COMPONENTS": "labels", "colorize": "labels",
    "parse_ops": "maskops", "apply_ops": "maskops",
    "get_registry": "plugins",
    "Alignment": "types", "AlignedFace": "types", "FaceMask": "types", "ComponentCodes": "types",
    "EditResult": "types",
    "MgpeError": "errors", "InputError": "errors", "UsageError": "errors", "MaskOpError": "errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'mgpe_toolkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
