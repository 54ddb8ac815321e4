"""Machinery every training run shares: device choice, per-step random streams, metric logs."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from ..weights import pick_device  # noqa: F401  (the trainers' import)


def cuda_speedups(device, amp: bool | None, channels_last: bool | None, *modules) -> tuple[bool, bool]:
    """bf16 autocast and channels_last memory, each on by default (None) on CUDA and off elsewhere, and cuDNN's
    autotuner on CUDA (fixed shapes: the fastest convolution is picked once). Converts `modules` in place when
    channels_last is on; returns (amp, channels_last) as decided (amp: see `autocast`)."""
    import torch

    cuda = device.type == "cuda"
    amp = cuda if amp is None else amp
    channels_last = cuda if channels_last is None else channels_last
    if channels_last:
        for module in modules:
            if module is not None:
                module.to(memory_format=torch.channels_last)
    if cuda:
        torch.backends.cudnn.benchmark = True
    return amp, channels_last


def autocast(device, amp: bool):
    """The context a training step's forward passes run in: bf16 autocast on `device` when amp, else nothing."""
    import contextlib

    import torch

    return torch.autocast(device.type, dtype=torch.bfloat16) if amp else contextlib.nullcontext()


def precision_name(amp: bool) -> str:
    """How a run's model card names its arithmetic."""
    return "bf16 autocast" if amp else "fp32"


def step_rng(seed: int, step: int) -> np.random.Generator:
    """The random stream of one training step: which samples, which flips. Depends only on (seed, step), so a
    resumed run draws exactly what the uninterrupted run would have."""
    return np.random.default_rng([seed, step])


def default_workers(device) -> int:
    """Data-loading processes for `--workers auto`: none on CPU (the cores are training), else up to 8, the
    machine's cores shared between the training processes on it (LOCAL_WORLD_SIZE, as torchrun sets it)."""
    if device.type == "cpu":
        return 0
    local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, min(8, ((os.cpu_count() or 2) - 2) // local))


PREFETCH = 4  # batches each data worker builds ahead


class _Steps:
    """Map-style dataset over training steps: item i is make(start + i)."""

    def __init__(self, make: Callable, start: int, stop: int):
        self.make, self.start, self.stop = make, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int):
        return self.make(self.start + i)


def _worker_init(_: int) -> None:
    import cv2

    cv2.setNumThreads(1)


def step_batches(make: Callable, start: int, stop: int, device, workers: int | None = None) -> Iterator:
    """make(step) for step in [start, stop), in order, for training on `device`. With workers > 0 (None:
    default_workers), worker processes build them ahead of the training step; `make` depends on the step
    alone, so the batches are the same either way."""
    workers = default_workers(device) if workers is None else workers
    if workers <= 0:
        for step in range(start, stop):
            yield make(step)
        return
    from torch.utils.data import DataLoader

    # Spawned, not forked: a child forked while OpenCV's or mediapipe's threads hold a lock can hang forever.
    yield from DataLoader(_Steps(make, start, stop), batch_size=None, shuffle=False, num_workers=workers,
                          pin_memory=device.type == "cuda", prefetch_factor=PREFETCH, worker_init_fn=_worker_init,
                          multiprocessing_context="spawn", persistent_workers=False)


@dataclass
class RunTimes:
    """Where a training run's wall time went (seconds): waiting for each step's batch, in the steps themselves
    (on a GPU until the step's losses are on the host), and the rest (logs, sample grids, checkpoints)."""

    data: float = 0.0
    step: float = 0.0
    wall: float = 0.0
    steps: int = 0
    first: float = 0.0  # of `data`: until the first batch (worker processes starting)
    device_wait: float = 0.0  # of `step`: the host waiting for the device to finish each step's work

    def timed(self, items: Iterable) -> Iterator:
        """`items`, adding the time each took to arrive to `data`, and the time until the last to `wall`."""
        start = last = time.perf_counter()
        first = True
        try:
            for item in items:
                now = time.perf_counter()
                if first:
                    self.first, first = now - start, False
                self.data += now - last
                yield item
                last = time.perf_counter()
        finally:
            self.wall += time.perf_counter() - start

    def add_step(self, seconds: float, device_wait: float = 0.0) -> None:
        self.step += seconds
        self.device_wait += device_wait
        self.steps += 1

    def train_step(self, trainer, item):
        """trainer.train_step(item), timed (with the `device_wait` the trainer's step records)."""
        start = time.perf_counter()
        out = trainer.train_step(item)
        self.add_step(time.perf_counter() - start, trainer.device_wait)
        return out

    def summary(self) -> str:
        if self.wall <= 0 or self.steps == 0:
            return "no steps timed"
        other = max(self.wall - self.data - self.step, 0.0)
        share = lambda t: f"{100 * t / self.wall:.0f}%"  # noqa: E731
        # Little waiting for the device means the host's launching of kernels bounds the step, not the device.
        waited = f" ({share(self.device_wait)} waiting for the device)" if self.device_wait > 0 else ""
        return (f"{self.steps} steps in {self.wall:.1f} s ({self.steps / self.wall:.2f} it/s): {share(self.step)} "
                f"in the steps{waited}, {share(self.data)} waiting for data ({self.first:.1f} s of it for the "
                f"first batch), {share(other)} logs, samples and checkpoints")


def to_host(values) -> tuple[list, float]:
    """`values.tolist()` (a tensor) and the seconds the host waited for it: on a GPU, how far the device's work
    lags behind the host's launches when the step ends; zero on the CPU."""
    start = time.perf_counter()
    out = values.tolist()
    return out, (time.perf_counter() - start if values.device.type != "cpu" else 0.0)


class Warnings:
    """Reports each distinct message once (worker processes may each meet the same bad file)."""

    def __init__(self, warn: Callable[[str], None] | None):
        self.warn, self.seen = warn, set()

    def __call__(self, messages: list[str]) -> None:
        for m in messages:
            if m not in self.seen:
                self.seen.add(m)
                if self.warn:
                    self.warn(m)


class RunLog:
    """Scalars to `metrics.jsonl` (always) and TensorBoard (when the tensorboard package is installed); with
    enabled=False (ranks other than 0 of a multi-process run), nothing."""

    def __init__(self, out: Path, enabled: bool = True):
        self.path = Path(out) / "metrics.jsonl"
        self.enabled = enabled
        self._tb = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(Path(out) / "tb"))
        except Exception:  # tensorboard not installed: the JSON log is enough
            self._tb = None

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **{k: round(float(v), 6) for k, v in values.items()}}) + "\n")
        if self._tb is not None:
            for key, value in values.items():
                self._tb.add_scalar(key, value, step)

    def images(self, step: int, tag: str, grid) -> None:
        """grid: (3, H, W) float tensor in [0, 1]."""
        if self._tb is not None:
            self._tb.add_image(tag, grid, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()

    def truncate_after(self, step: int) -> None:
        """On resume: drop lines logged after the checkpoint's step (they will be logged again)."""
        if not self.enabled or not self.path.is_file():
            return
        keep = [line for line in self.path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
        self.path.write_text("".join(line + "\n" for line in keep))


def run_steps(trainer, steps: int, *, data_description: str, on_step: Callable | None = None,
              workers: int | None = None, named: Callable[[object], dict[str, float]] = lambda out: out,
              every_step: Callable | None = None, deadline: float | None = None) -> list:
    """The run-loop of both trainers: train until `steps` total steps, each step's losses (`named` turns what the
    trainer's step returns into {name: value}) logged, checked (a non-finite loss stops the run: DivergedError)
    and passed to `on_step`; rank 0 alone then runs `every_step(trainer, log, steps)` (samples) and checkpoints
    every config.checkpoint_every steps and at the end. `workers` data-loading processes (None: default_workers).
    `deadline` (time.monotonic(); one process only): stop after the first step that ends past it, checkpointed, so
    that `--resume` continues there. Returns what each step returned."""
    import time

    from . import ddp
    from .checkpoint import stop_if_diverged

    main = trainer.world.main  # with several processes, rank 0 alone writes logs, samples and checkpoints
    log = RunLog(trainer.out, enabled=main)
    log.truncate_after(trainer.step)
    history = []
    times = trainer.times = RunTimes()
    try:
        with ddp.stops_cleanly(trainer.world):
            for item in times.timed(step_batches(trainer.batches, trainer.step, steps, trainer.device, workers)):
                out = times.train_step(trainer, item)
                losses = named(out)
                stop_if_diverged(trainer.step, losses)
                history.append(out)
                log.scalars(trainer.step, {f"loss/{k}": v for k, v in losses.items()})
                if on_step:
                    on_step(trainer.step, out)
                if main and every_step is not None:
                    every_step(trainer, log, steps)
                late = deadline is not None and time.monotonic() >= deadline
                if main and (trainer.step % trainer.config.checkpoint_every == 0 or trainer.step == steps or late):
                    trainer.save(data_description, target=steps)
                if late:
                    break
    finally:
        log.close()
    return history

