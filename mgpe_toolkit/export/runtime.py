"""Running the exported graphs with onnxruntime: providers picked automatically, whole batches at a time."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import InputError, UsageError
from ..nets.inputs import COMPONENT_NAMES
from ..weights import file_digest


def pick_providers(requested: str = "auto") -> list[str]:
    """`auto`: CUDA (and TensorRT when MGPE_ORT_TENSORRT=1) from onnxruntime-gpu when present, then CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if requested != "auto":
        wanted = [p.strip() for p in requested.split(",") if p.strip()]
        missing = [p for p in wanted if p not in available]
        if missing:
            raise UsageError(f"onnxruntime providers {', '.join(missing)} are not available here "
                             f"(available: {', '.join(available)})")
        return wanted
    order = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if os.environ.get("MGPE_ORT_TENSORRT") == "1":
        order.insert(0, "TensorrtExecutionProvider")
    return [p for p in order if p in available]


def find_manifest(where: str | Path) -> Path | None:
    """A manifest file as given; in a folder `manifest.json`, else its only `manifest.*.json` (an export made
    with --int8 or --fp16 alone). None when there is none; an error when the choice is not clear."""
    path = Path(where)
    if path.is_file():
        return path
    if not path.is_dir():
        return None
    if (path / "manifest.json").is_file():
        return path / "manifest.json"
    others = sorted(path.glob("manifest.*.json"))
    if len(others) > 1:
        raise UsageError(f"{path}: several exports ({', '.join(p.name for p in others)}); name the manifest file "
                         f"with --exports")
    return others[0] if others else None


class OnnxRunner:
    """The learned stages of one export (a manifest, or a folder: see find_manifest), batched."""

    def __init__(self, manifest: str | Path, providers: str = "auto", threads: int = 0):
        import onnxruntime as ort

        path = find_manifest(manifest) or Path(manifest)
        if not path.is_file():
            raise InputError(path, "no ONNX manifest (run `mgpe export onnx` first)")
        try:
            self.manifest = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(path, f"not a readable manifest ({exc}); export again with `mgpe export onnx`") from None
        if self.manifest.get("format") != "mgpe-onnx-1":
            raise InputError(path, "not an mgpe ONNX manifest")
        self.resolution = int(self.manifest["resolution"])
        from ..nets.config import GANConfig
        from ..nets.inputs import input_spec

        self.spec = input_spec(GANConfig.from_dict(self.manifest.get("config") or {"resolution": self.resolution}))
        self.fp16 = self.manifest["precision"] == "fp16"
        self.providers = pick_providers(providers)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        # Three sessions run one after another: threads that spin-wait after their graph would steal the cores
        # from the next one (measured: generator 95 ms alone, 125 ms after the encoders with spinning on).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.sessions = {}
        for name in ("encoders", "generator", "fuser"):
            graph = path.parent / self.manifest["graphs"][name]["file"]
            if not graph.is_file():
                raise InputError(graph, "listed in the manifest but missing")
            want = self.manifest["graphs"][name].get("sha256_16")
            if want and file_digest(graph) != want:
                raise InputError(graph, "differs from the graph its manifest lists (truncated or changed since the "
                                        "export): run `mgpe export onnx` again")
            try:
                self.sessions[name] = ort.InferenceSession(str(graph), opts, providers=self.providers)
            except Exception as exc:  # onnxruntime's own errors (InvalidProtobuf, Fail, ...) have no common base
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise InputError(graph, f"onnxruntime cannot load it ({reason}); run `mgpe export onnx` again") from None
        self.used_providers = self.sessions["generator"].get_providers()

    def _f(self, x: np.ndarray) -> np.ndarray:
        return x.astype(np.float16 if self.fp16 else np.float32, copy=False)

    def encode(self, crops: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feats = self.sessions["encoders"].run(None, {n: self._f(crops[n]) for n in COMPONENT_NAMES})
        return dict(zip(COMPONENT_NAMES, feats))

    def render(self, feats: dict[str, np.ndarray], onehot: np.ndarray, centres: np.ndarray, target: np.ndarray,
               removed: np.ndarray) -> np.ndarray:
        """Generator + fuser on a batch (images in [-1, 1]) -> final images (N, 3, S, S) float32."""
        feed = {f"f_{n}": feats[n] for n in COMPONENT_NAMES}
        feed.update(mask_onehot=self._f(onehot), centres=centres.astype(np.float32))
        foreground = self.sessions["generator"].run(None, feed)[0]
        return self.sessions["fuser"].run(None, {"foreground": foreground, "target_image": self._f(target),
                                                 "removed": self._f(removed)})[0].astype(np.float32)

    @property
    def on_gpu(self) -> bool:
        return self.used_providers[0] in ("CUDAExecutionProvider", "TensorrtExecutionProvider")

    def describe(self) -> str:
        return f"onnxruntime ({', '.join(self.used_providers)}, {self.manifest['precision']})"


class TorchRunner:
    """The same interface over the PyTorch framework (for `--backend torch` and parity)."""

    def __init__(self, weights: str | Path, device: str = "auto"):
        from ..weights import load_generator, pick_device

        self.device = pick_device(device)
        self.net = load_generator(weights, str(self.device))
        self.resolution = self.net.config.resolution
        from ..nets.inputs import input_spec

        self.spec = input_spec(self.net.config)

    def encode(self, crops: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        with torch.no_grad():
            codes = self.net.encode({n: torch.from_numpy(c).to(self.device) for n, c in crops.items()})
        return {n: mu.cpu().numpy() for n, (mu, _) in codes.items()}

    def render(self, feats, onehot, centres, target, removed) -> np.ndarray:
        import torch

        t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(self.device)  # noqa: E731
        with torch.no_grad():
            fg = self.net.generate({n: t(f) for n, f in feats.items()}, t(onehot), t(centres.astype(np.float32)))
            out = self.net.fuse(fg, t(target), t(removed))
        return out.float().cpu().numpy()

    @property
    def on_gpu(self) -> bool:
        return self.device.type == "cuda"

    def describe(self) -> str:
        return f"torch ({self.device})"
