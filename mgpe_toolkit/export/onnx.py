"""`mgpe export onnx`: one ONNX graph per learned stage, a dynamic batch axis, and a manifest.

Graphs (inputs in [-1, 1] unless said otherwise):
- encoders.onnx  left_eye, right_eye, mouth (crops), skin, hair (masked full images) -> five feature tensors
- generator.onnx the five features, the one-hot target mask, centres (N, 3, 2) image px of the target's left
                 eye, right eye and mouth -> foreground; the paper's placement happens inside the graph
- fuser.onnx     foreground, target image, removed (N, 1, S, S; 1 on the five components) -> final image
- parser.onnx    image -> (N, 19, S, S) logits (when parser weights are given)
"""
from __future__ import annotations

import json
import os
import tempfile
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import UsageError
from ..io import atomic_path, claim, release, write_json
from ..labels import COMPONENTS
from ..nets.inputs import COMPONENT_NAMES, FULL, PLACED, input_spec
from ..weights import file_digest

DEFAULT_OPSET = 17
HELD_OUT_SEED = 50000  # synthetic portraits from here on are never used for training or calibration


class EncodersGraph(nn.Module):
    def __init__(self, framework):
        super().__init__()
        self.encoders = framework.encoders

    def forward(self, left_eye, right_eye, mouth, skin, hair):
        crops = dict(left_eye=left_eye, right_eye=right_eye, mouth=mouth, skin=skin, hair=hair)
        return tuple(self.encoders[n](crops[n])[0] for n in COMPONENT_NAMES)


class GeneratorGraph(nn.Module):
    def __init__(self, framework):
        super().__init__()
        self.framework = framework

    def forward(self, f_left_eye, f_right_eye, f_mouth, f_skin, f_hair, mask_onehot, centres):
        feats = dict(left_eye=f_left_eye, right_eye=f_right_eye, mouth=f_mouth, skin=f_skin, hair=f_hair)
        return self.framework.generate(feats, mask_onehot, centres)


class FuserGraph(nn.Module):
    def __init__(self, framework):
        super().__init__()
        self.framework = framework

    def forward(self, foreground, target_image, removed):
        return self.framework.fuse(foreground, target_image, removed)


def example_inputs(framework, batch: int = 2) -> dict[str, dict[str, torch.Tensor]]:
    """Inputs of the right shapes for each graph of a framework (random, for tracing and parity checks)."""
    g = torch.Generator().manual_seed(0)
    s = framework.config.resolution
    crops = {}
    for n in COMPONENT_NAMES:
        w, h = COMPONENTS[n].crop_size(s)
        crops[n] = torch.rand(batch, 3, h, w, generator=g) * 2 - 1
    feats = {"f_" + n: torch.randn(batch, *framework.feature_shape(n), generator=g) for n in COMPONENT_NAMES}
    labels = torch.randint(0, 19, (batch, s, s), generator=g)
    onehot = torch.nn.functional.one_hot(labels, 19).permute(0, 3, 1, 2).float()
    centres = torch.tensor([[[0.375 * s, 0.45 * s], [0.625 * s, 0.45 * s], [0.5 * s, 0.72 * s]]]).repeat(batch, 1, 1)
    centres = centres + torch.randn(batch, 3, 2, generator=g) * 3
    return {
        "encoders": crops,
        "generator": {**feats, "mask_onehot": onehot, "centres": centres},
        "fuser": {"foreground": torch.rand(batch, framework.foreground_channels, s, s, generator=g) * 2 - 1,
                  "target_image": torch.rand(batch, 3, s, s, generator=g) * 2 - 1,
                  "removed": (torch.rand(batch, 1, s, s, generator=g) > 0.5).float()},
        "parser": {"image": torch.rand(batch, 3, s, s, generator=g) * 2 - 1},
    }


OUTPUTS = {"encoders": ["f_" + n for n in COMPONENT_NAMES], "generator": ["foreground"], "fuser": ["image"],
           "parser": ["logits"]}


def export_graph(module: nn.Module, inputs: dict[str, torch.Tensor], outputs: list[str], path: Path, opset: int,
                fp16: bool) -> None:
    import onnx

    module = module.eval()
    args = tuple(inputs.values())
    if fp16:
        module = module.half()
        args = tuple(a.half() if a.is_floating_point() and name != "centres" else a
                     for name, a in zip(inputs, args))
    dynamic = {name: {0: "batch"} for name in list(inputs) + outputs}
    with torch.no_grad():
        produced = module(*args)
    produced = produced if isinstance(produced, tuple) else (produced,)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter about constants that are constants
        torch.onnx.export(module, args, str(tmp), input_names=list(inputs), output_names=outputs,
                          dynamic_axes=dynamic, opset_version=opset, dynamo=False, do_constant_folding=True)
        # The exporter's shape inference names some output axes after the batch: declare what the module gives.
        model = onnx.load(str(tmp))
        for value, tensor in zip(model.graph.output, produced):
            dims = value.type.tensor_type.shape.dim
            for i, size in enumerate(tensor.shape):
                dims[i].Clear()
                if i == 0:
                    dims[i].dim_param = "batch"
                else:
                    dims[i].dim_value = int(size)
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, str(tmp))


def _describe(path: Path) -> dict:
    import onnx

    model = onnx.load(str(path))

    def io(values):
        out = []
        for v in values:
            t = v.type.tensor_type
            dims = [d.dim_param or d.dim_value for d in t.shape.dim]
            out.append({"name": v.name, "shape": dims, "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name})
        return out

    return {"file": path.name, "inputs": io(model.graph.input), "outputs": io(model.graph.output),
            "sha256_16": file_digest(path)}


PRECISIONS = ("fp32", "fp16", "int8")


def export_onnx(weights: str | Path, out: str | Path, *, parser_weights: str | Path | None = None,
                opset: int = DEFAULT_OPSET, precision: str = "fp32", calibrate: str = "synthetic:64",
                calibrate_count: int = 32, keep_full_resolution: bool = True) -> Path:
    """Export every learned stage of `weights` (and the parser) to `out`; returns the manifest path.
    int8 graphs are calibrated on `calibrate_count` aligned faces of `calibrate` (a training data spec);
    `keep_full_resolution=False` quantizes the full-resolution convolutions too (to measure what that costs)."""
    from ..weights import load_generator, load_unet

    if not 13 <= opset <= 21:
        raise UsageError(f"--opset {opset}: supported range is 13..21")
    if precision not in PRECISIONS:
        raise UsageError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    framework = load_generator(weights, "cpu")
    cfg = framework.config
    if cfg.embedding != "local":
        raise UsageError(f"{weights}: an `embedding={cfg.embedding}` ablation model is for training and measuring "
                         "in torch; the graphs take the five components")
    examples = example_inputs(framework)
    graphs = {"encoders": EncodersGraph(framework), "generator": GeneratorGraph(framework), "fuser": FuserGraph(framework)}
    parser_size = None
    if parser_weights:
        parser, parser_size = load_unet(parser_weights, "cpu")
        graphs["parser"] = parser
        if parser_size != cfg.resolution:
            examples["parser"] = {"image": torch.rand(2, 3, parser_size, parser_size) * 2 - 1}
    suffix = "" if precision == "fp32" else f".{precision}"
    files = {name: out / f"{name}{suffix}.onnx" for name in graphs}
    calibration = None
    manifest_path = out / f"manifest{suffix}.json"
    holder = claim(manifest_path, os.getpid())  # one export into a folder at a time
    if holder is not None:
        raise UsageError(f"{out}: another export (process {holder}) is writing {manifest_path.name} there; wait "
                         "for it or export into another folder")
    try:
        with tempfile.TemporaryDirectory(dir=out, prefix=".export-") as work:
            # Every graph is made in `work` (int8 from fp32 graphs made there too), then all are moved into
            # place and the manifest written last: a failed export leaves the folder as it was.
            staged = {name: Path(work) / path.name for name, path in files.items()}
            first = staged if precision != "int8" else {name: Path(work) / f"{name}.source.onnx" for name in graphs}
            for name, module in graphs.items():
                export_graph(module, examples[name], OUTPUTS[name], first[name], opset, precision == "fp16")
            if precision == "int8":
                calibration = _quantize(first, staged, framework, parser_size, calibrate, calibrate_count,
                                        keep_full_resolution)
            for name, path in files.items():
                os.replace(staged[name], path)
        return _write_manifest(manifest_path, files, opset, precision, cfg, weights, parser_weights, parser_size,
                               calibration)
    finally:
        release(manifest_path)


def _write_manifest(path: Path, files: dict[str, Path], opset: int, precision: str, cfg, weights, parser_weights,
                    parser_size, calibration) -> Path:
    manifest = {
        "format": "mgpe-onnx-1", "opset": opset, "precision": precision,
        "resolution": cfg.resolution, "parser_resolution": parser_size, "config": cfg.to_dict(),
        "weights": {"file": str(Path(weights).resolve()), "sha256_16": file_digest(Path(weights))},
        "parser_weights": ({"file": str(Path(parser_weights).resolve()), "sha256_16": file_digest(Path(parser_weights))}
                           if parser_weights else None),
        "components": {n: {"crop": list(COMPONENTS[n].crop_size(cfg.resolution)),
                           "placed": n in PLACED, "masked_full_image": n in FULL} for n in COMPONENT_NAMES},
        "graphs": {name: _describe(path) for name, path in files.items()},
        "value_range": "images in [-1, 1]; centres in image pixels (x, y) of left_eye, right_eye, mouth",
    }
    if calibration is not None:
        manifest["calibration"] = asdict(calibration)
    return write_json(path, manifest)


def calibration_faces(spec: str, count: int, size: int, skip: int = 0):
    """`count` aligned faces (uint8 images, canonical masks) at `size` from a training data spec, spread over
    the set by a fixed permutation, after the first `skip` of it; bad files are skipped (and said).
    Returns (images, masks, description)."""
    from ..data.sets import SampleSource, SyntheticSet, open_dataset

    if count < 1:
        raise UsageError(f"--calibrate-count {count}: must be at least 1")
    dataset = open_dataset(spec, size=size, option="--calibrate")
    if skip and isinstance(dataset, SyntheticSet):
        dataset = SyntheticSet(count, size, seed=HELD_OUT_SEED)  # held-out portraits, as the demo card's metrics
        skip = 0
    picks = np.random.default_rng(0).permutation(len(dataset))[skip:skip + count]
    if not len(picks):
        raise UsageError(f"{dataset.describe()}: no faces left after the first {skip}")
    source = SampleSource(dataset, size, lambda message: warnings.warn(message, stacklevel=2))
    samples = [source.get(int(i)) for i in picks]
    return [s.image for s in samples], [s.mask for s in samples], dataset.describe()


def measure_export(weights: str | Path, manifest: str | Path, *, parser_weights: str | Path | None = None,
                   faces: int = 16):
    """int8 against fp32 torch on `faces` aligned faces the calibration did not see (Int8Quality, description)."""
    from .quantize import measure_int8

    man = json.loads(Path(manifest).read_text())
    cal = man["calibration"]
    try:
        images, masks, described = calibration_faces(cal["spec"], faces, man["resolution"], skip=cal["count"])
    except UsageError:  # a small folder, all used for calibration
        images, masks, described = calibration_faces(cal["spec"], faces, man["resolution"])
        described += ", the calibration faces themselves (none left over)"
    return measure_int8(weights, manifest, images, masks, parser_weights), described


def _quantize(fp32: dict[str, Path], files: dict[str, Path], framework, parser_size: int | None, spec: str,
              count: int, keep_full_resolution: bool):
    from .quantize import CALIBRATION_CHUNK, Calibration, edit_batches, parser_inputs, quantize_graphs

    size = framework.config.resolution
    images, masks, described = calibration_faces(spec, count, size)
    parser_images = None
    if parser_size:
        x = parser_inputs(images, parser_size)
        parser_images = [x[i:i + CALIBRATION_CHUNK] for i in range(0, len(x), CALIBRATION_CHUNK)]
    kept = quantize_graphs(fp32, files, edit_batches(images, masks, size, spec=input_spec(framework.config)),
                           parser_images, keep_full_resolution)
    return Calibration(spec, described, len(images), fp32_convs=kept)


def parity(weights: str | Path, manifest: str | Path, *, parser_weights: str | Path | None = None,
           batch: int = 3) -> dict[str, float]:
    """Max |torch - onnxruntime| per graph on the same random inputs (CPU, fp32 torch reference)."""
    import onnxruntime as ort

    from ..weights import load_generator, load_unet

    man = json.loads(Path(manifest).read_text())
    framework = load_generator(weights, "cpu")
    modules = {"encoders": EncodersGraph(framework), "generator": GeneratorGraph(framework),
               "fuser": FuserGraph(framework)}
    examples = example_inputs(framework, batch)
    if parser_weights and "parser" in man["graphs"]:
        modules["parser"] = load_unet(parser_weights, "cpu")[0]
        size = man["parser_resolution"]
        examples["parser"] = {"image": torch.rand(batch, 3, size, size) * 2 - 1}
    fp16 = man["precision"] == "fp16"
    result = {}
    for name, module in modules.items():
        sess = ort.InferenceSession(str(Path(manifest).parent / man["graphs"][name]["file"]),
                                    providers=["CPUExecutionProvider"])
        with torch.no_grad():
            ref = module.eval()(*examples[name].values())
        ref = ref if isinstance(ref, tuple) else (ref,)
        feed = {k: (v.numpy().astype(np.float16) if fp16 and k != "centres" else v.numpy())
                for k, v in examples[name].items()}
        got = sess.run(None, feed)
        result[name] = max(float(np.abs(g.astype(np.float32) - r.numpy()).max()) for g, r in zip(got, ref))
    return result
