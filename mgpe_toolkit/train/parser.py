"""Training the parsing network P_F (U-Net, class-weighted pixel-wise cross-entropy) on image/mask pairs."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import ddp, losses
from ..errors import UsageError
from ..weights import CHECKPOINT, card_path, save_unet
from ..weights import PARSER_WEIGHTS as WEIGHTS
from ..data.sets import Dataset, Sample, SampleSource
from .data import BatchMaker, batch_tensors, stack_samples, to_training
from .loop import (Warnings, autocast, cuda_speedups, pick_device, precision_name, run_steps,
                   step_rng, to_host)


@dataclass
class ParserTrainConfig:
    size: int = 128
    base: int = 16
    depth: int = 4
    batch: int = 8
    lr: float = 1e-3
    seed: int = 0
    checkpoint_every: int = 100
    weight_power: float = 0.5  # class weights = (median frequency / frequency) ** power
    augment: str = "none"  # "wild": zoom/rotate/shift windows and photometric damage (train.augmentation)
    decay_steps: int = 0  # > 0: the learning rate falls along a half cosine to 1% of lr at this step

    def __post_init__(self):
        if not 16 <= self.size <= 1024:
            raise UsageError(f"size {self.size} must lie in 16..1024")
        for key, most in (("base", 512), ("depth", 7), ("batch", 1024), ("checkpoint_every", 10 ** 9)):
            if not 1 <= getattr(self, key) <= most:
                raise UsageError(f"{key} {getattr(self, key)} must lie in 1..{most}")
        if not 0 < self.lr <= 1 or self.decay_steps < 0:
            raise UsageError(f"lr {self.lr} must lie in (0, 1] and decay steps {self.decay_steps} not be negative")
        if not 0 <= self.seed < 2 ** 63 or not (np.isfinite(self.weight_power) and self.weight_power >= 0):
            raise UsageError(f"seed {self.seed} must lie in 0..2**63-1 and weight_power be finite, not negative")
        from .augmentation import AUGMENTS

        if self.augment not in AUGMENTS:
            raise UsageError(f"augment must be one of {', '.join(AUGMENTS)}, not {self.augment!r}")

    def lr_at(self, step: int) -> float:
        if self.decay_steps <= 0:
            return self.lr
        t = min(step / self.decay_steps, 1.0)
        return self.lr * (0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * t)))

    @classmethod
    def from_dict(cls, data: dict) -> "ParserTrainConfig":
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise UsageError(f"unknown parser config key(s): {', '.join(sorted(unknown))}")
        return cls(**data)


def label_frequencies(source: SampleSource, n: int, classes: int = 19, seed: int = 0):
    import torch

    counts = np.zeros(classes, np.float64)
    rng = np.random.default_rng(seed)
    for i in rng.permutation(len(source.dataset))[:n]:
        counts += np.bincount(source.get(int(i)).mask.ravel(), minlength=classes)[:classes]
    return torch.from_numpy(counts / max(counts.sum(), 1))


class ParserBatches(BatchMaker):
    """The (CPU) batch of a training step, a function of the step alone; each sample's augmentation draws from
    its own stream (seed, step, row), so a rank loads its rows alone."""

    def __init__(self, dataset: Dataset, size: int, batch: int, seed: int, augment: str = "none"):
        super().__init__(dataset, None, batch, seed)
        self.size, self.augment = size, augment

    def __call__(self, step: int):
        rng = step_rng(self.seed, step)
        idx = rng.integers(0, len(self.source.dataset), self.batch)
        flips = (rng.random(self.batch) < 0.5).tolist()
        rows = range(self.batch)[self.rows]
        samples = [self.sample(int(idx[j]), np.random.default_rng([self.seed, step, j])) for j in rows]
        return stack_samples(samples, [flips[j] for j in rows]), self.take_messages()

    def sample(self, index: int, rng: np.random.Generator | None = None) -> Sample:
        """Sample `index` as a training window (the aligned framing without `rng` or augmentation)."""
        from .augmentation import wild, window

        s = self.source.get(index)
        wild_rng = rng if self.augment == "wild" else None
        image, mask = window(s.image, s.mask, s.context, self.size, wild_rng)
        if wild_rng is not None:
            image, mask = wild(image, mask, wild_rng)
        return Sample(image, mask, s.name)


class ParserTrainer:
    def __init__(self, dataset: Dataset, out: str | Path, config: ParserTrainConfig = ParserTrainConfig(), *,
                 device: str = "auto", warn: Callable[[str], None] | None = None, init: str | Path | None = None,
                 amp: bool | None = None, channels_last: bool | None = None):
        """amp (bf16 autocast) and channels_last default to True on CUDA, False elsewhere (on the CPU channels_last
        is 1.3-1.5× as fast, but torch's batch norm in that layout is less precise there)."""
        import torch

        from ..nets.unet import UNet, UNetConfig, class_weights

        from ..labels import IGNORE

        if config.size % 2 ** config.depth:
            raise UsageError(f"size {config.size} must be divisible by 2**depth = {2 ** config.depth}")
        self.config, self.out = config, Path(out)
        self.world, self.device = ddp.join(pick_device(device))
        self.batches = ParserBatches(dataset, config.size, config.batch, config.seed, config.augment)
        self.batches.rows = ddp.share(config.batch, self.world)
        self.warnings = Warnings(warn)
        torch.manual_seed(config.seed)
        self.net_config = UNetConfig(base=config.base, depth=config.depth)
        self.model = UNet(self.net_config).to(self.device)
        self.init = None
        if init is not None:  # fine-tuning: weights from an earlier run, a fresh optimiser
            self.init = self._load_init(Path(init))
        self.model = ddp.sync_batchnorm(self.model, self.world, self.device)
        self.amp, self.channels_last = cuda_speedups(self.device, amp, channels_last, self.model)
        self._forward = ddp.parallel(self.model, self.world, self.device)  # what the step calls
        self.opt = torch.optim.Adam(self.model.parameters(), lr=config.lr, fused=self.device.type == "cuda")
        counted = SampleSource(dataset, config.size, lambda m: self.warnings([m]))
        frequencies = label_frequencies(counted, 64, seed=config.seed)
        self.weights = class_weights(frequencies, config.weight_power)
        self.loss_fn = torch.nn.CrossEntropyLoss(weight=self.weights.to(self.device), ignore_index=IGNORE)
        self.step = 0

    def train_step(self, item=None) -> float:
        """One step on `item` (from `self.batches(self.step)`, built here when None)."""
        import torch

        (x, y), messages = item if item is not None else self.batches(self.step)
        self.warnings(messages)
        self.model.train()
        x, y = to_training(x, y, self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        for group in self.opt.param_groups:
            group["lr"] = self.config.lr_at(self.step)
        with autocast(self.device, self.amp):
            logits = self._forward(x)
        total, weight = losses.partial_cross_entropy(logits.float(), y, self.loss_fn.weight)
        # The class-weighted mean divides by the weights of the batch's pixels: all ranks' (ddp.batch_mean).
        loss = ddp.batch_mean(total, weight, self.world)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        host, self.device_wait = to_host(ddp.mean_over_ranks(loss.detach(), self.world))
        return float(host)

    def evaluate(self, dataset: Dataset, limit: int = 32) -> float:
        """Per-pixel accuracy of the current model on the first `limit` samples of `dataset` at the aligned
        framing (IGNORE pixels left out)."""
        import torch

        from ..labels import LABELS

        frames = ParserBatches(dataset, self.config.size, 1, 0)
        self.model.eval()
        correct = total = 0
        with torch.no_grad():
            for i in range(min(limit, len(dataset))):
                x, y = batch_tensors([frames.sample(i)], [False])
                pred = self.model(x.to(self.device)).argmax(1).cpu()
                known = y < len(LABELS)
                correct += int(((pred == y) & known).sum())
                total += int(known.sum())
        return correct / max(total, 1)

    def _load_init(self, path: Path) -> str:
        from ..errors import InputError
        from ..weights import file_digest, read_safetensors

        state, meta = read_safetensors(path, "unet")
        theirs, ours = json.loads(meta["unet"]), self.net_config.to_dict()
        narrower = {**theirs, "base": ours["base"]} == ours and theirs["base"] < ours["base"]
        if theirs != ours and not narrower:
            raise InputError(path, f"a U-Net of {meta['unet']}, not the {ours} this run trains (or a narrower one)")
        source = f"{path.name} (sha256 {file_digest(path)}, step {meta.get('step', '?')})"
        if not narrower:
            self.model.load_state_dict(state)
            return source
        from ..nets.unet import UNet, UNetConfig, widened

        small = UNet(UNetConfig(**theirs))
        small.load_state_dict(state)
        self.model.load_state_dict(widened(small, ours["base"], seed=self.config.seed).state_dict())
        return f"{source}, widened from base {theirs['base']}"

    # -- files --------------------------------------------------------------------------------------------
    def save(self, data_description: str = "", target: int | None = None) -> Path:
        """Checkpoint + inference weights and card (which says whether the run reached `target`)."""
        from ..io import read_json
        from .checkpoint import run_state, save_checkpoint

        card = card_path(self.out / WEIGHTS)
        if self.init is None and card.is_file():  # a resumed fine-tuning run keeps saying where it started
            self.init = read_json(card).get("initialised_from")

        self.out.mkdir(parents=True, exist_ok=True)
        cfg = asdict(self.config)
        save_checkpoint(self.out / CHECKPOINT, step=self.step, models={"parser": self.model},
                        optimizers={"parser": self.opt}, config=cfg,
                        extra={"data": data_description, "world_size": self.world.size})
        return save_unet(self.model, self.out / WEIGHTS, step=self.step, config=cfg,
                                     data=data_description, init=self.init,
                                     run={**run_state(self.step, target), "precision": precision_name(self.amp)})

    def resume(self, data_description: str | None = None) -> bool:
        """Continue from out/checkpoint.safetensors if there is one; True if it did. Refuses a checkpoint made
        with other settings or (when given) other data."""
        from .checkpoint import load_into, same_run

        path = self.out / CHECKPOINT
        if not path.is_file():
            return False
        meta = load_into(path, {"parser": self.model}, {"parser": self.opt},
                         check=lambda m: same_run(path, m, asdict(self.config), data_description))
        self.step = meta["step"]
        self.resumed_world_size = meta["extra"].get("world_size", 1)
        return True


def run_training(trainer: ParserTrainer, steps: int, *, data_description: str,
                 on_step: Callable[[int, float], None] | None = None, workers: int | None = None,
                 deadline: float | None = None) -> list[float]:
    """Train until `steps` total steps (loop.run_steps; or `deadline`), checkpointing every
    config.checkpoint_every and at the end; `workers` data-loading processes (None: loop.default_workers)."""
    return run_steps(trainer, steps, data_description=data_description, on_step=on_step, workers=workers,
                     named=lambda loss: {"parser_ce": loss}, deadline=deadline)
