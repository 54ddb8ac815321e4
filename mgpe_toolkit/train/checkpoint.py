"""Checkpoints as one safetensors file: model and optimiser tensors, with step and config as JSON metadata.

Written atomically (temp file + rename), so a run killed mid-write leaves the previous checkpoint intact.
Loading checks the file and names the problem ("not a checkpoint", "truncated", "wrong network").
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import InputError
from ..weights import read_safetensors, require_finite, write_safetensors

FORMAT = "mgpe-checkpoint-1"


def _flatten_optimizer(name: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{name}.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(name: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"optim.{name}."
    for key, value in tensors.items():
        if key.startswith(prefix):
            pid, field = key[len(prefix):].split(".", 1)
            state.setdefault(int(pid), {})[field] = value
    for key, value in meta["scalars"].items():
        pid, field = key.split(".", 1)
        state.setdefault(int(pid), {})[field] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def stop_if_diverged(step: int, losses: dict[str, float]) -> None:
    """DivergedError at the first non-finite loss, before anything of this step is saved."""
    from ..errors import DivergedError

    bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
    if bad:
        name, value = next(iter(bad.items()))
        raise DivergedError(f"step {step}: loss {name} is {value} (the run diverged: lower --lr); stopped, "
                            "the last good checkpoint is kept")


def save_checkpoint(path: str | os.PathLike, *, step: int, models: dict[str, torch.nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer] | None = None, config: dict | None = None,
                    extra: dict | None = None, compact: bool = False) -> Path:
    """With `compact`, Adam's moments are stored in 8 bits (see below) and the live optimisers take the stored
    values, so a run resumed from the file continues exactly as this one does."""
    tensors: dict[str, torch.Tensor] = {}
    for name, model in models.items():
        for key, value in model.state_dict().items():
            tensors[f"model.{name}.{key}"] = value.detach().cpu().contiguous()
    require_finite(tensors, str(path))
    optim_meta = {}
    for name, opt in (optimizers or {}).items():
        t, meta = _flatten_optimizer(name, opt)
        tensors.update(t)
        optim_meta[name] = meta
    metadata = {"format": FORMAT, "step": str(step), "config": json.dumps(config or {}),
                "models": json.dumps(sorted(models)), "optimizers": json.dumps(optim_meta),
                "extra": json.dumps(extra or {})}
    if compact:
        tensors, layout = _compact(tensors)
        metadata["compact"] = json.dumps(layout)
        stored = _expand(tensors, layout, Path(path))
        for name, opt in (optimizers or {}).items():
            for pid, state in opt.state_dict()["state"].items():
                for key, value in state.items():
                    if f"optim.{name}.{pid}.{key}" in layout:
                        value.copy_(stored[f"optim.{name}.{pid}.{key}"])
    return write_safetensors(path, tensors, metadata)


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, metadata with step/config/models/optimizers/extra decoded); InputError if unreadable. A compact
    checkpoint's moments come back as float32."""
    path = Path(path)
    tensors, raw = read_safetensors(path)
    if raw.get("format") != FORMAT:
        raise InputError(path, f"not an mgpe checkpoint (format {raw.get('format')!r})")
    if "compact" in raw:
        tensors = _expand(tensors, json.loads(raw["compact"]), path)
    meta = {"step": int(raw["step"]), "config": json.loads(raw["config"]), "models": json.loads(raw["models"]),
            "optimizers": json.loads(raw["optimizers"]), "extra": json.loads(raw.get("extra", "{}"))}
    return tensors, meta


# Compact checkpoints: what a short GPU run can hand back (and take along next time) where the full one is too
# large. Weights, buffers and steps stay exact; each of Adam's moments goes to 8 bits per value in blocks of BLOCK
# values, as a logarithm over the block's range (the first moment with its sign), zero kept exact: Adam divides
# one moment by the root of the other, so each value needs the same relative precision, small or large.
BLOCK = 256
_MOMENTS = {"exp_avg": 127, "exp_avg_sq": 255}  # largest code: signed int8, unsigned uint8


def _quantize(t: torch.Tensor, top: int) -> dict[str, torch.Tensor]:
    flat = t.detach().float().cpu().reshape(-1)
    b = torch.nn.functional.pad(flat, (0, (-flat.numel()) % BLOCK)).reshape(-1, BLOCK)
    nonzero = b != 0
    logs = b.abs().clamp_min(1e-38).log2()
    low = torch.where(nonzero, logs, torch.full_like(b, float("inf"))).amin(1, keepdim=True)
    low = torch.where(torch.isfinite(low), low, torch.zeros_like(low))
    span = (torch.where(nonzero, logs, low).amax(1, keepdim=True) - low).clamp_min(1e-6)
    code = ((logs - low).clamp_min(0) / span * (top - 1)).round() + 1  # 1..top; 0 = exactly zero
    code = torch.where(nonzero, code * b.sign(), torch.zeros_like(code))
    return {"q": code.to(torch.int8 if top == 127 else torch.uint8), "low": low.squeeze(1), "span": span.squeeze(1)}


def _dequantize(parts: dict[str, torch.Tensor], top: int, shape: list[int]) -> torch.Tensor:
    q = parts["q"].float()
    b = q.sign() * torch.exp2(parts["low"][:, None] + (q.abs() - 1) / (top - 1) * parts["span"][:, None])
    return b.reshape(-1)[:math.prod(shape)].reshape(shape).contiguous()


def _compact(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    out, layout = {}, {}
    for key, value in tensors.items():
        top = _MOMENTS.get(key.rsplit(".", 1)[-1]) if key.startswith("optim.") else None
        if top is None or value.numel() < BLOCK:
            out[key] = value
            continue
        for part, t in _quantize(value, top).items():
            out[f"{key}#{part}"] = t.contiguous()
        layout[key] = {"top": top, "shape": list(value.shape), "dtype": str(value.dtype).replace("torch.", "")}
    return out, layout


def _expand(tensors: dict[str, torch.Tensor], layout: dict[str, Any], path: Path) -> dict[str, torch.Tensor]:
    out = {k: v for k, v in tensors.items() if "#" not in k}
    for key, info in layout.items():
        parts = {k.split("#", 1)[1]: v for k, v in tensors.items() if k.startswith(key + "#")}
        if set(parts) != {"q", "low", "span"}:
            raise InputError(path, f"compact checkpoint lacks part of {key}")
        out[key] = _dequantize(parts, info["top"], info["shape"]).to(getattr(torch, info["dtype"]))
    return out


def load_into(path: str | os.PathLike, models: dict[str, torch.nn.Module],
              optimizers: dict[str, torch.optim.Optimizer] | None = None, *,
              check: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Load a checkpoint into live models (and optimisers); returns its metadata. `check(meta)` runs first and
    may refuse the checkpoint (other settings, other data) before any tensor is loaded."""
    tensors, meta = read_checkpoint(path)
    if check is not None:
        check(meta)
    for name, model in models.items():
        prefix = f"model.{name}."
        sd = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not sd:
            raise InputError(path, f"holds no weights for {name!r} (it has {', '.join(meta['models'])})")
        try:
            model.load_state_dict(sd)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise InputError(path, f"weights do not fit {name!r}: {first}") from None
    for name, opt in (optimizers or {}).items():
        if name in meta["optimizers"]:
            opt.load_state_dict(_unflatten_optimizer(name, tensors, meta["optimizers"][name]))
            _match_layout(opt)
    return meta


def _match_layout(opt: torch.optim.Optimizer) -> None:
    """Give each loaded moment its parameter's memory layout: checkpoints store them contiguous, a channels_last
    network's are not, and fused Adam on CUDA has refused the mismatch (pytorch/pytorch#106951)."""
    for group in opt.param_groups:
        for p in group["params"]:
            state = opt.state.get(p, {})
            for key, value in state.items():
                if torch.is_tensor(value) and value.shape == p.shape and value.stride() != p.stride():
                    state[key] = torch.empty_like(p, dtype=value.dtype).copy_(value)


def same_run(path: Path, meta: dict[str, Any], config: dict, data_description: str | None) -> None:
    """Refuse to resume a checkpoint made with another config, or (when known on both sides) other data."""
    from ..errors import UsageError

    if meta["config"] != config:
        diff = sorted(k for k in set(config) | set(meta["config"]) if meta["config"].get(k) != config.get(k))
        shown = ", ".join(f"{k} {meta['config'].get(k)!r} → {config.get(k)!r}" for k in diff)
        raise UsageError(f"{path}: was trained with other settings ({shown}); resume with the same options or "
                         "use a new --out")
    was = meta.get("extra", {}).get("data")
    if data_description and was and was != data_description:
        raise UsageError(f"{path}: was trained on {was}; this run's data is {data_description}: resume with the "
                         "same --data or use a new --out")


def run_state(step: int, target: int | None) -> dict[str, Any]:
    """What a model card says of the run that wrote it: the step it asked for and whether it got there."""
    if target is None:
        return {}
    return {"target_steps": target, "finished": step >= target}
