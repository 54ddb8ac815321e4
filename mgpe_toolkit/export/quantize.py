"""int8 graphs for CPUs: static quantization of every convolution (QDQ: per-output-channel int8 weights, uint8
activations), calibrated on aligned faces run through the fp32 graphs, and a measure of what it costs.

Only convolutions are quantized: they are nearly all of the work, and leaving instance norm, padding, the
feature placement and the final tanh in fp32 keeps the error small. Convolutions whose output has the image's
full resolution stay fp32 too: they carry the result's fine detail (with the tiny demo weights, quantizing
them takes the result from 41.1 dB to 22.5 dB against fp32) and are 17% of the `paper` config's work (7.9 of
46.8 GFLOPs). onnxruntime fuses each DequantizeLinear -> Conv -> QuantizeLinear into an integer convolution
(VNNI on CPUs that have it).
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..nets.inputs import COMPONENT_NAMES, edit_inputs

QUANTIZED_OPS = ("Conv",)
CALIBRATION_CHUNK = 8  # samples per calibration run (onnxruntime keeps min/max over all of them)


@dataclass
class Calibration:
    """Where the activation ranges come from, as the manifest records it."""

    spec: str  # as given to --calibrate
    data: str  # what it held
    count: int
    fp32_convs: dict[str, int] = field(default_factory=dict)  # per graph: full-resolution convs left in fp32
    method: str = "minmax"
    ops: tuple[str, ...] = QUANTIZED_OPS


@dataclass
class EditBatch:
    """One batch of learned-stage inputs built from aligned faces and their masks (images in [-1, 1])."""

    crops: dict[str, np.ndarray]
    onehot: np.ndarray
    centres: np.ndarray
    removed: np.ndarray
    target: np.ndarray
    donor: list[int] = field(default_factory=list)  # per sample: whose component features it is painted with


def edit_batches(images: list[np.ndarray], masks: list[np.ndarray], size: int,
                 chunk: int = CALIBRATION_CHUNK, spec: dict | None = None) -> list[EditBatch]:
    """Reconstructions and swaps: in each chunk, every other face is painted with its neighbour's features
    (what `swap+` does), so the ranges cover both."""
    out = []
    for start in range(0, len(images), chunk):
        imgs, ms = images[start:start + chunk], masks[start:start + chunk]
        crops, onehot, centres, removed, target = edit_inputs(imgs, ms, ms, size, **(spec or {}))
        donor = [i if i % 2 == 0 else (i + 1) % len(imgs) for i in range(len(imgs))]
        out.append(EditBatch(crops, onehot, centres, removed, target, donor))
    return out


def parser_inputs(images: list[np.ndarray], size: int) -> np.ndarray:
    """uint8 RGB faces -> (N, 3, size, size) float32 in [-1, 1], what the parser graph takes."""
    import cv2

    x = np.stack([cv2.resize(a, (size, size), interpolation=cv2.INTER_AREA) if a.shape[0] != size else a
                  for a in images])
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32) / 127.5 - 1


def stage_feeds(sessions: dict, batch: EditBatch) -> dict[str, dict[str, np.ndarray]]:
    """The feed of each graph for one batch, each downstream feed built from the upstream graph's output."""
    enc = {n: batch.crops[n] for n in COMPONENT_NAMES}
    feats = dict(zip(COMPONENT_NAMES, sessions["encoders"].run(None, enc)))
    gen = {f"f_{n}": feats[n][batch.donor] for n in COMPONENT_NAMES}
    gen.update(mask_onehot=batch.onehot, centres=batch.centres)
    foreground = sessions["generator"].run(None, gen)[0]
    fuse = {"foreground": foreground, "target_image": batch.target, "removed": batch.removed}
    return {"encoders": enc, "generator": gen, "fuser": fuse}


def full_resolution_convs(model_path: Path, size: int) -> list[str]:
    """Names of the Conv nodes whose output is `size` wide (shapes from ONNX shape inference)."""
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(model_path)))
    width = {v.name: v.type.tensor_type.shape.dim[-1].dim_value
             for v in list(model.graph.value_info) + list(model.graph.output) if v.type.tensor_type.shape.dim}
    return [n.name for n in model.graph.node if n.op_type == "Conv" and width.get(n.output[0]) == size]


def quantize_graphs(graphs: dict[str, Path], out: dict[str, Path], batches: list[EditBatch],
                    parser_images: list[np.ndarray] | None = None, keep_full_resolution: bool = True) -> dict[str, int]:
    """Quantize each fp32 graph in `graphs` (name -> file) to `out[name]`, calibrated on `batches`; the parser
    (when present) on `parser_images`, (N, 3, s, s) float32 in [-1, 1] at its own resolution.
    Returns how many convolutions of each graph stayed fp32 (none without `keep_full_resolution`)."""
    import onnxruntime as ort

    sessions = {n: ort.InferenceSession(str(graphs[n]), providers=["CPUExecutionProvider"])
                for n in ("encoders", "generator", "fuser")}
    feeds: dict[str, list] = {n: [] for n in graphs}
    for b in batches:
        for name, feed in stage_feeds(sessions, b).items():
            feeds[name].append(feed)
    if "parser" in graphs:
        feeds["parser"] = [{"image": x} for x in parser_images or []]
    sizes = {name: (parser_images if name == "parser" else [b.target for b in batches])[0].shape[-1]
             for name in graphs}
    return {name: quantize_graph(src, out[name], feeds[name], sizes[name] if keep_full_resolution else None)
            for name, src in graphs.items()}


def quantize_graph(src: Path, dst: Path, feeds: list[dict[str, np.ndarray]], keep_size: int | None = None) -> int:
    """Quantize one fp32 graph file to `dst` (written atomically), calibrated on `feeds`; convolutions whose
    output is `keep_size` wide stay fp32. Returns how many stayed."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from ..io import atomic_path

    class Reader(CalibrationDataReader):
        def __init__(self, items):
            self.items = iter(items)

        def get_next(self):
            return next(self.items, None)

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        keep = full_resolution_convs(pre, keep_size) if keep_size else []
        with atomic_path(dst) as out:
            quantize_static(str(pre), str(out), Reader(feeds), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                            op_types_to_quantize=list(QUANTIZED_OPS), nodes_to_exclude=keep)
            onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    return len(keep)


@dataclass
class Int8Quality:
    """int8 graphs against the fp32 torch networks on the same faces."""

    faces: int
    image_psnr: float  # final images, int8 vs fp32, dB
    worst_psnr: float  # the worst single image
    recon_psnr_fp32: float  # reconstructions vs the real face: what the model itself achieves ...
    recon_psnr_int8: float  # ... and the same with the int8 graphs
    parser_agreement: float | None = None  # share of pixels where both parsers pick the same label


def measure_int8(weights: str | Path, manifest: str | Path, images: list[np.ndarray], masks: list[np.ndarray],
                 parser_weights: str | Path | None = None) -> Int8Quality:
    import torch

    from ..metrics.reconstruction import psnr as psnr255
    from .runtime import OnnxRunner, TorchRunner

    def psnr(a, b):  # images in [-1, 1]
        return psnr255((np.clip(a, -1, 1) + 1) * 127.5, (np.clip(b, -1, 1) + 1) * 127.5)

    onnx, ref = OnnxRunner(manifest, "CPUExecutionProvider"), TorchRunner(weights, "cpu")
    got, want, recon, targets = [], [], [], []
    for b in edit_batches(images, masks, onnx.resolution, spec=onnx.spec):
        for runner, sink in ((onnx, got), (ref, want)):
            feats = {n: f[b.donor] for n, f in runner.encode(b.crops).items()}
            sink.append(runner.render(feats, b.onehot, b.centres, b.target, b.removed))
        recon.append(np.array(b.donor) == np.arange(len(b.donor)))
        targets.append(b.target)
    got, want, recon, targets = map(np.concatenate, (got, want, recon, targets))
    per_image = [psnr(g, w) for g, w in zip(got, want)]
    quality = Int8Quality(len(got), psnr(got, want), min(per_image), psnr(want[recon], targets[recon]),
                          psnr(got[recon], targets[recon]))
    size = onnx.manifest.get("parser_resolution")
    if parser_weights and size and "parser" in onnx.manifest["graphs"]:
        import onnxruntime as ort

        from ..weights import load_unet

        x = parser_inputs(images, size)
        graph = Path(manifest).parent / onnx.manifest["graphs"]["parser"]["file"]
        int8 = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
        with torch.no_grad():
            fp32 = load_unet(parser_weights, "cpu")[0](torch.from_numpy(x)).numpy()
        quality.parser_agreement = float(np.mean(int8.argmax(1) == fp32.argmax(1)))
    return quality
