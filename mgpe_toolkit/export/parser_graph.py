"""The parser's ONNX graphs, built once per weights file and kept in the user's cache (`$XDG_CACHE_HOME/mgpe`,
keyed by the weights' SHA-256): fp32 exported with torch, int8 quantized from it. A read-only cache means a
rebuild per run, said once (CacheWarning)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import UsageError
from ..weights import file_digest, load_unet


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mgpe"


PRECISIONS = ("int8", "fp32")
# int8 activation ranges from 32 synthetic portraits: no data to ship, and on the held-out photos of lfw-hair and
# the Helen samples the labels are as good as with ranges from real photos (README of models/parser-real).
CALIBRATION = ("synthetic:64", 32)


class CacheWarning(UserWarning):
    """The graph cache could not be used (unwritable, or an entry that failed to load): rebuilt, said once."""


def onnx_graph(path: Path, precision: str = "fp32", *, rebuild: bool = False) -> tuple[bytes, int]:
    """(ONNX model bytes, input size) of parser weights: fp32 exported with torch once, int8 quantized from it
    once (every convolution, calibrated on CALIBRATION); both then read from the cache. `rebuild`: replace the
    cached entries (one that failed to load). A cache that cannot be written (a read-only folder, a file in its
    place) costs a rebuild in a temporary folder per run, with a CacheWarning."""
    if precision not in PRECISIONS:
        raise UsageError(f"parser precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    suffix = "" if precision == "fp32" else f"-{precision}"
    cached = _cache_dir() / f"parser-unet-{file_digest(path)}{suffix}.onnx"
    info_file = cached.with_suffix(".json")
    recipe = None if precision == "fp32" else f"{CALIBRATION[1]} of {CALIBRATION[0]}"
    if not rebuild and cached.is_file() and info_file.is_file():
        try:
            info = json.loads(info_file.read_text())
            if info.get("calibration") == recipe and cached.stat().st_size > 0:
                return cached.read_bytes(), int(info["size"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
    import tempfile

    from ..errors import OutputError
    from ..io import write_json

    if _writable(cached.parent):
        try:
            size = _build_graph(path, precision, cached, rebuild)
            write_json(info_file, {"size": size, "weights": str(path), "calibration": recipe})
            return cached.read_bytes(), size
        except (OSError, OutputError):  # full, or made read-only meanwhile
            _UNWRITABLE.add(cached.parent)
    if cached.parent not in _SAID:
        import warnings

        _SAID.add(cached.parent)
        warnings.warn(f"the parser's graph cache {cached.parent} cannot be written: the graph is rebuilt in a "
                      "temporary folder on every run (set XDG_CACHE_HOME to a writable folder)", CacheWarning)
    with tempfile.TemporaryDirectory() as tmp:
        size = _build_graph(path, precision, Path(tmp) / "parser.onnx", rebuild)
        return (Path(tmp) / "parser.onnx").read_bytes(), size


_UNWRITABLE: set[Path] = set()  # cache folders found unwritable in this process
_SAID: set[Path] = set()  # ... and already reported


def _writable(folder: Path) -> bool:
    if folder in _UNWRITABLE:
        return False
    try:
        folder.mkdir(parents=True, exist_ok=True)
        ok = folder.is_dir() and os.access(folder, os.W_OK)
    except OSError:
        ok = False
    if not ok:
        _UNWRITABLE.add(folder)
    return ok


def session(path: Path, precision: str, opts):
    """An onnxruntime session of the parser's graph; a cached graph that fails to load is rebuilt and replaced."""
    import onnxruntime as ort

    graph, size = onnx_graph(path, precision)
    try:
        return ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"]), size
    except Exception as exc:  # onnxruntime's own error types (InvalidProtobuf, Fail, ...) are not importable
        import warnings

        warnings.warn(f"the parser's cached graph for {path.name} failed to load ({str(exc).splitlines()[0][:120]}): "
                      "rebuilt and replaced", CacheWarning)
        graph, size = onnx_graph(path, precision, rebuild=True)
        return ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"]), size


def _build_graph(path: Path, precision: str, dst: Path, rebuild: bool = False) -> int:
    """Write the parser's graph at `precision` to `dst` (atomically); returns its input size. `rebuild`: the fp32
    graph an int8 one is quantized from is rebuilt too."""
    import tempfile

    if precision == "fp32":
        import torch

        from .onnx import export_graph

        model, size = load_unet(path)
        export_graph(model, {"image": torch.zeros(1, 3, size, size)}, ["logits"], dst, 17, fp16=False)
        return size
    from .onnx import calibration_faces
    from .quantize import CALIBRATION_CHUNK, parser_inputs, quantize_graph

    from ..errors import OutputError

    for again in (rebuild, True):  # a cached fp32 graph that cannot be read is rebuilt once
        graph, size = onnx_graph(path, "fp32", rebuild=again)
        x = parser_inputs(calibration_faces(CALIBRATION[0], CALIBRATION[1], size)[0], size)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "fp32.onnx").write_bytes(graph)
            try:
                quantize_graph(Path(tmp) / "fp32.onnx", dst,
                               [{"image": x[i:i + CALIBRATION_CHUNK]} for i in range(0, len(x), CALIBRATION_CHUNK)])
                return size
            except (OSError, OutputError):
                raise
            except Exception:  # onnx's DecodeError and the like: a damaged fp32 graph
                if again:
                    raise
    return size
