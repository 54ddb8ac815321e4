"""Parser `unet` (the default when its weights are found): the paper's P_F, run through onnxruntime on the CPU.

Weights are a `parser-unet.safetensors` written by `mgpe train parser`: an explicit path, else the search path
of `weights.py`, else the real-photo parser shipped in `models/parser-real/`. They are turned into an ONNX
graph once (by `mgpe export onnx`'s exporter) and kept in the user's cache (`$XDG_CACHE_HOME/mgpe`, keyed by
the weights' SHA-256), so later runs start without importing torch; a read-only cache means a rebuild per run.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..labels import LABEL_INDEX
from ..types import FaceMask
from ..weights import describe_search, file_digest, find_weights, read_safetensors
from ..weights import weights_problem as _weights_problem

WEIGHTS_NAME = "parser-unet.safetensors"
SHIPPED_FOLDER = "parser-real"  # under the repository's models/


def shipped_weights() -> Path:
    from .. import weights

    return weights.REPO_MODELS / SHIPPED_FOLDER / WEIGHTS_NAME


def default_weights() -> Path | None:
    """The weights the `unet` parser uses when none are given: the search path first, then the shipped ones."""
    found = find_weights(WEIGHTS_NAME)
    return found if found is not None else (shipped_weights() if shipped_weights().is_file() else None)


def weights_problem(weights: str | Path | None = None) -> str | None:
    """None when weights can be found, else why not (for `mgpe plugins`)."""
    if weights is None and shipped_weights().is_file():
        return None
    return _weights_problem(WEIGHTS_NAME, f"nor {shipped_weights()}; train one with `mgpe train parser`", weights)


def load_unet(path: str | Path, device: str = "cpu"):
    """(torch model in eval mode, input size) from a parser weights file."""
    import torch

    from ..nets.unet import UNet, UNetConfig

    path = Path(path)
    state, meta = read_safetensors(path, "unet")
    model = UNet(UNetConfig(**json.loads(meta["unet"])))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(path, f"weights do not fit the U-Net: {str(exc).splitlines()[0]}") from None
    return model.eval().to(torch.device(device)), int(meta.get("size", 256))


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mgpe"


def onnx_graph(path: Path) -> tuple[bytes, int]:
    """(ONNX model bytes, input size) of parser weights; exported with torch once, then read from the cache."""
    cached = _cache_dir() / f"parser-unet-{file_digest(path)}.onnx"
    size_file = cached.with_suffix(".json")
    if cached.is_file() and size_file.is_file():
        try:
            return cached.read_bytes(), int(json.loads(size_file.read_text())["size"])
        except (OSError, ValueError, KeyError):
            pass
    import tempfile

    import torch

    from ..export.onnx import export_graph
    from ..io import write_json

    model, size = load_unet(path)
    example = {"image": torch.zeros(1, 3, size, size)}
    try:
        export_graph(model, example, ["logits"], cached, 17, fp16=False)
        write_json(size_file, {"size": size, "weights": str(path)})
        return cached.read_bytes(), size
    except OSError:  # a read-only cache: the graph is rebuilt next time
        with tempfile.TemporaryDirectory() as tmp:
            export_graph(model, example, ["logits"], Path(tmp) / "parser.onnx", 17, fp16=False)
            return (Path(tmp) / "parser.onnx").read_bytes(), size


class UNetParser:
    name = "unet"

    def __init__(self, weights: str | Path | None = None, device: str = "cpu", threads: int = 0):
        path = Path(weights) if weights else default_weights()
        if path is None:
            raise InputError(WEIGHTS_NAME, describe_search(WEIGHTS_NAME))
        if not path.is_file():
            raise InputError(path, "no such file")
        self.path = path
        self.device = device
        self._model = None
        self._session = None
        if device == "cpu":
            import onnxruntime as ort

            graph, self.size = onnx_graph(path)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            # Spinning threads steal the cores the next stage (or another worker) needs.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])
        else:
            self._model, self.size = load_unet(path, device)

    def _inputs(self, image: np.ndarray) -> np.ndarray:
        import cv2

        img = np.ascontiguousarray(image[..., :3])
        if img.shape[:2] != (self.size, self.size):
            shrink = img.shape[0] > self.size
            img = cv2.resize(img, (self.size, self.size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return (img.astype(np.float32).transpose(2, 0, 1)[None] / 127.5 - 1.0).astype(np.float32)

    def logits(self, image: np.ndarray) -> np.ndarray:
        """(19, H, W) float32 logits for an aligned RGB face of any size (run at the model's, resized back)."""
        import cv2

        h, w = image.shape[:2]
        x = self._inputs(image)
        if self._session is not None:
            y = self._session.run(None, {"image": x})[0][0]
        else:
            import torch

            with torch.no_grad():
                y = self._model(torch.from_numpy(x).to(self.device))[0].float().cpu().numpy()
        if (h, w) != y.shape[1:]:
            y = cv2.resize(y.transpose(1, 2, 0), (w, h), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)
        return y

    def parse(self, image: np.ndarray) -> FaceMask:
        labels = self.logits(image).argmax(0).astype(np.uint8)
        return FaceMask(labels=one_face(labels), parser=self.name)


FACE = tuple(LABEL_INDEX[n] for n in ("skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear",
                                      "r_ear", "mouth", "u_lip", "l_lip"))
HEAD = tuple(LABEL_INDEX[n] for n in ("hair", "hat", "ear_r"))
BODY = tuple(LABEL_INDEX[n] for n in ("neck", "neck_l", "cloth"))


def one_face(labels: np.ndarray) -> np.ndarray:
    """The mask of the aligned face alone: a mask describes one person, so other people in the view (a face
    beside this one, their hair and clothes) become background. The aligned face is the face region nearest
    the template's face centre; hair and head wear are kept where they touch it (or hair that does), neck and
    clothes where they touch what is kept."""
    import cv2

    h, w = labels.shape
    face = np.isin(labels, FACE).astype(np.uint8)
    n, comp, stats, centroids = cv2.connectedComponentsWithStats(face, connectivity=8)
    if n <= 1:
        return labels
    centre = np.array([0.5 * w, 0.55 * h])
    areas = stats[1:, cv2.CC_STAT_AREA].astype(float)
    dist = np.linalg.norm(centroids[1:] - centre, axis=1) / w
    main = 1 + int(np.argmax(areas * np.exp(-(dist / 0.15) ** 2)))
    keep = comp == main
    near = max(2, round(0.02 * w))
    for group in (HEAD, BODY):
        part = np.isin(labels, group).astype(np.uint8)
        if not part.any():
            continue
        k, pcomp = cv2.connectedComponents(part, connectivity=8)
        grown = cv2.dilate(keep.astype(np.uint8), np.ones((2 * near + 1, 2 * near + 1), np.uint8)).astype(bool)
        touching = np.unique(pcomp[grown & (pcomp > 0)])
        keep |= np.isin(pcomp, touching)
    out = labels.copy()
    out[~keep & (labels != 0)] = 0
    return out
