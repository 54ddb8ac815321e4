"""Registers mgpe's own stage implementations through the same hook third-party plugins use."""
from __future__ import annotations

from ..hookspecs import hookimpl


@hookimpl
def register_stages(register):
    from . import (align_mediapipe, encode_classical, face_graphs, fuse_classical, generate_classical, learned,
                   parse_hybrid, parse_mesh, parse_unet)

    register("align", "mediapipe", align_mediapipe.MediapipeAligner,
             description="mediapipe 0.10.21's face detectors + 478-point face mesh (ONNX), 5-point similarity",
             check=face_graphs.graphs_problem)
    register("parse", "mesh", parse_mesh.MeshParser,
             description="face-mesh polygons + selfie segmentation + GrabCut hair; no weights of its own",
             check=face_graphs.graphs_problem)
    register("parse", "unet", parse_unet.UNetParser,
             description="the default: the paper's U-Net parser P_F (int8, mirror-averaged) through "
                         "onnxruntime; real-photo weights ship in models/parser-real",
             check=parse_unet.weights_problem)
    register("parse", "hybrid", parse_hybrid.HybridParser,
             description="the U-Net's mask with the face mesh's eyes",
             check=lambda: parse_unet.weights_problem() or face_graphs.graphs_problem())
    register("encode", "classical", encode_classical.ClassicalEncoder,
             description="component pixels, regions and Lab statistics; no weights")
    register("generate", "classical", generate_classical.ClassicalGenerator,
             description="per-component similarity/moment warps, growth fill, Lab quantile matching")
    register("fuse", "classical", fuse_classical.ClassicalFuser,
             description="feathered hair, Poisson-blended face, inpainted revealed background")
    nets = "the paper's networks; weights from `mgpe train` (mgpe-gan.safetensors)"
    register("encode", "mgpe", learned.LearnedEncoder, description="E_local: " + nets, check=learned.weights_problem)
    register("generate", "mgpe", learned.LearnedGenerator, description="E_m + placement + G_m: " + nets,
             check=learned.weights_problem)
    register("fuse", "mgpe", learned.LearnedFuser, description="E_b + G_b: " + nets, check=learned.weights_problem)

