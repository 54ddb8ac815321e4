"""Registers mgpe's own stage implementations through the same hook third-party plugins use."""
from __future__ import annotations

from ..hookspecs import hookimpl


def _module_check(module: str) -> str | None:
    import importlib.util

    return None if importlib.util.find_spec(module) is not None else f"python package {module!r} is not installed"


@hookimpl
def register_stages(register):
    from . import align_mediapipe, parse_mesh, parse_unet

    register("align", "mediapipe", align_mediapipe.MediapipeAligner,
             description="mediapipe 0.10.21 face detection + 478-point face mesh, 5-point similarity",
             check=lambda: _module_check("mediapipe"))
    register("parse", "mesh", parse_mesh.MeshParser,
             description="face-mesh polygons + selfie segmentation + GrabCut hair; no weights",
             check=lambda: _module_check("mediapipe"))
    register("parse", "unet", parse_unet.UNetParser,
             description="the paper's U-Net parser P_F; weights from `mgpe train parser`",
             check=parse_unet.weights_problem)
