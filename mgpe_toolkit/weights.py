"""The one room where a file becomes a network (and a network a file): file names, the search for weights,
shipped and demo weights, safetensors + model cards, the parser's and the generator's loaders and savers, the
VGG19 weights of the perceptual loss, and the device they run on. Weights are never downloaded, only looked up.

Search order: an explicit path, then each folder in $MGPE_MODELS (os.pathsep-separated), then the shipped
`models/` folder: installed as the `mgpe_models` package (wheel or editable install), or the checkout's own.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import InputError, UsageError

GAN_WEIGHTS = "mgpe-gan.safetensors"  # the learned stages (`mgpe train`)
PARSER_WEIGHTS = "parser-unet.safetensors"  # the `unet` parser (`mgpe train parser`)
CHECKPOINT = "checkpoint.safetensors"  # a training run's resumable state
SHIPPED_PARSER = "parser-real"  # folder under models/: the default parser
DEMO = "demo-tiny"  # folder under models/: the demo's generator (+ parser), trained on synthetic faces
VGG19_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's ImageNet VGG19, when the user has it


def _shipped_models() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("mgpe_models")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[1] / "models"  # a checkout run without installing


REPO_MODELS = _shipped_models()


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


def weights_problem(filename: str, hint: str, weights: str | os.PathLike | None = None) -> str | None:
    """None when explicit `weights` exist, or `filename` is found in the search path; else why not."""
    if weights is not None:
        return None if Path(weights).is_file() else f"weights {weights} not found"
    return None if find_weights(filename) is not None else f"{describe_search(filename)} ({hint})"


def file_digest(path: str | os.PathLike) -> str:
    """The first 16 hex digits of a file's SHA-256: how cards, manifests and caches name weights."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def card_path(weights: str | os.PathLike) -> Path:
    """The model card beside a weights file: NAME.json."""
    return Path(weights).with_suffix(".json")


# -- shipped weights ----------------------------------------------------------------------------------------
def shipped_parser() -> Path:
    return REPO_MODELS / SHIPPED_PARSER / PARSER_WEIGHTS


def default_parser() -> Path | None:
    """The weights the `unet` parser uses when none are given: the search path first, then the shipped ones."""
    found = find_weights(PARSER_WEIGHTS)
    return found if found is not None else (shipped_parser() if shipped_parser().is_file() else None)


def parser_problem(weights: str | Path | None = None) -> str | None:
    """None when parser weights can be found, else why not (for `mgpe plugins`)."""
    if weights is None and shipped_parser().is_file():
        return None
    return weights_problem(PARSER_WEIGHTS, f"nor {shipped_parser()}; train one with `mgpe train parser`", weights)


def generator_problem(weights: str | Path | None = None) -> str | None:
    return weights_problem(GAN_WEIGHTS, "train with `mgpe train`, or pass --weights", weights)


def resolve_generator(weights: str | Path | None) -> Path:
    """The learned stages' weights: `weights`, else the first mgpe-gan.safetensors on the search path."""
    path = Path(weights) if weights else find_weights(GAN_WEIGHTS)
    if path is None:
        raise InputError(GAN_WEIGHTS, describe_search(GAN_WEIGHTS))
    return path.resolve()


def resolve_parser(weights: str | Path | None) -> Path:
    """The `unet` parser's weights: `weights`, else `default_parser()`; InputError when there are none."""
    path = Path(weights) if weights else default_parser()
    if path is None:
        raise InputError(PARSER_WEIGHTS, describe_search(PARSER_WEIGHTS))
    if not path.is_file():
        raise InputError(path, "no such file")
    return path


def demo_weights() -> tuple[Path, Path | None]:
    """(generator, parser or None) of the demo checkpoint in models/demo-tiny."""
    folder = REPO_MODELS / DEMO
    parser = folder / PARSER_WEIGHTS
    return folder / GAN_WEIGHTS, (parser if parser.is_file() else None)


# -- safetensors --------------------------------------------------------------------------------------------
def nonfinite(tensors: dict) -> str | None:
    """The name of the first floating tensor that holds NaN or inf, else None."""
    return next((k for k, v in tensors.items() if v.is_floating_point() and not bool(v.isfinite().all())), None)


def require_finite(tensors: dict, what: str) -> None:
    """DivergedError when a floating tensor holds NaN or inf: such weights are never written."""
    from .errors import DivergedError

    bad = nonfinite(tensors)
    if bad is not None:
        raise DivergedError(f"{what}: {bad} holds NaN or inf (the run diverged: lower --lr); not written, "
                            "the last good checkpoint is kept")


def write_safetensors(path: str | os.PathLike, tensors: dict, metadata: dict[str, str]) -> Path:
    """Write tensors atomically (temp file + rename); refuses NaN or inf (DivergedError)."""
    from safetensors.torch import save_file

    from .io import atomic_path

    path = Path(path)
    require_finite(tensors, str(path))
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def state_of(module, skip: tuple[str, ...] = ()) -> dict:
    """A module's state dict on the CPU, contiguous, without the keys that start with `skip`."""
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()
            if not (skip and k.startswith(skip))}


def read_safetensors(path: str | os.PathLike, network: str | None = None):
    """(tensors, metadata) of a safetensors file; InputError naming the file when it is unreadable or, with
    `network`, when its metadata does not say it holds that network."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise InputError(path, f"not a readable safetensors file ({exc})") from None
    bad = nonfinite(tensors)
    if bad is not None:
        raise InputError(path, f"{bad} holds NaN or inf: weights of a training run that diverged")
    if network is not None and meta.get("network") != network:
        raise InputError(path, f"not {network} weights (its metadata says network={meta.get('network')!r})")
    return tensors, meta


# -- networks -----------------------------------------------------------------------------------------------
def load_unet(path: str | Path, device: str = "cpu"):
    """(U-Net parser in eval mode, its input size) from a parser weights file."""
    import torch

    from .nets.unet import UNet, UNetConfig

    path = Path(path)
    state, meta = read_safetensors(path, "unet")
    model = UNet(UNetConfig(**json.loads(meta["unet"])))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(path, f"weights do not fit the U-Net: {str(exc).splitlines()[0]}") from None
    return model.eval().to(torch.device(device)), int(meta.get("size", 256))


def save_unet(model, path: Path, *, step: int, config: dict, data: str = "", init: str | None = None,
              run: dict | None = None) -> Path:
    """Parser inference weights (safetensors, config in the metadata) plus a model card `NAME.json` beside them."""
    from .io import write_json

    meta = {"network": "unet", "unet": json.dumps(model.config.to_dict()), "size": str(config["size"]),
            "step": str(step)}
    write_safetensors(path, state_of(model), meta)
    write_json(card_path(path), {
        "network": "U-Net parser P_F (mgpe_toolkit.nets.unet)", "config": config, "unet": model.config.to_dict(),
        "steps": step, "data": data, **({"initialised_from": init} if init else {}), **(run or {}),
        "parameters": int(sum(p.numel() for p in model.parameters())),
    })
    return path


def load_generator(path: str | Path, device: str = "cpu"):
    """The framework in eval mode from inference weights written by save_generator."""
    import torch

    from .nets.config import GANConfig
    from .nets.framework import MaskGuidedFramework

    path = Path(path)
    state, meta = read_safetensors(path, "mgpe-gan")
    G = MaskGuidedFramework(GANConfig.from_dict(json.loads(meta["config"])))
    missing, unexpected = G.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("decoders.")]
    if missing or unexpected:
        raise InputError(path, f"weights do not fit the framework (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return G.eval().to(torch.device(device))


def save_generator(G, path: Path, *, step: int, data: str = "", extra: dict | None = None) -> Path:
    """Inference weights of the framework (no decoders, no discriminators) + model card `NAME.json`."""
    from .io import write_json

    state = state_of(G, skip=("decoders.",))
    write_safetensors(path, state, {"network": "mgpe-gan", "config": json.dumps(G.config.to_dict()),
                                    "step": str(step)})
    write_json(card_path(path), {
        "network": "mask-guided portrait editing framework (mgpe_toolkit.nets.framework)",
        "config": G.config.to_dict(), "steps": step, "data": data, **(extra or {}),
        "parameters_inference": int(sum(v.numel() for v in state.values())),
    })
    return path


def find_vgg19() -> Path | None:
    """torchvision's VGG19 file in torch's hub cache ($TORCH_HOME/hub/checkpoints), if it is there."""
    import torch

    try:
        hub = Path(torch.hub.get_dir()) / "checkpoints"
    except Exception:  # no home folder: nothing cached
        return None
    found = hub / VGG19_FILE
    return found if found.is_file() else None


def load_vgg19(path: str | Path):
    """Frozen VGG19 features from a torchvision state dict (.pth, loaded with weights_only) or a safetensors
    file with the same `features.N.*` keys. Raises InputError naming the file when it does not fit."""
    import torch

    from .nets.vgg import VGG19Features

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file (VGG19 weights for the perceptual loss)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and safetensors errors have no common base
        raise InputError(path, f"not readable VGG19 weights ({type(exc).__name__}: {exc})") from None
    net = VGG19Features()
    wanted = net.state_dict()
    state = {k: v for k, v in state.items() if k in wanted}
    if set(state) != set(wanted) or any(state[k].shape != wanted[k].shape for k in wanted):
        raise InputError(path, "not VGG19 weights (expected torchvision's `features.N.weight` layout)")
    net.load_state_dict(state)
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


# -- device -------------------------------------------------------------------------------------------------
def pick_device(name: str = "auto"):
    """`auto` = CUDA when present, else CPU; `cuda`, `cuda:1`, `cpu` as asked (error if unavailable)."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device {name!r}: not a device (auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: this torch build sees no CUDA GPU")
    return device
