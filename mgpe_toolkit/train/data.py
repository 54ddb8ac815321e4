"""Training batches: a step's samples drawn from a dataset (`data.sets`), stacked as tensors for the trainers."""
from __future__ import annotations

import numpy as np

from ..data.sets import Dataset, Sample, SampleSource, flip_sample


class BatchMaker:
    """Base of the step -> (batch, warnings) builders the training loops prefetch: samples come through a
    SampleSource whose warnings travel with the batch (worker processes cannot print for the run)."""

    # The rows of the step's batch this process trains on (train.ddp.share): the whole batch is drawn
    # from (seed, step), then only these rows are loaded.
    rows = slice(None)

    def __init__(self, dataset: Dataset, size: int | None, batch: int, seed: int):
        self.batch, self.seed = batch, seed
        self._messages: list[str] = []
        self.source = SampleSource(dataset, size, self._messages.append)

    def take_messages(self) -> list[str]:
        out = self._messages[:]
        self._messages.clear()
        return out


def stack_samples(samples: list[Sample], flips: list[bool]):
    """uint8 images (N, S, S, 3) and masks (N, S, S) as tensors, mirrored where asked: what data workers send
    (a quarter of the bytes of float images)."""
    import torch

    images, masks = [], []
    for s, flip in zip(samples, flips):
        img, m = flip_sample(s.image, s.mask) if flip else (s.image, s.mask)
        images.append(img)
        masks.append(m)
    return torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(masks))


def to_training(images, masks, device=None):
    """stack_samples' tensors -> (images in [-1, 1] as (N, 3, S, S) float32, masks as (N, S, S) int64) on device."""
    x = images.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    return x.contiguous(), masks.to(device, non_blocking=True).long()


def batch_tensors(samples: list[Sample], flips: list[bool]):
    """(images in [-1, 1] as (N, 3, S, S) float32, masks as (N, S, S) int64) with the given mirrorings."""
    return to_training(*stack_samples(samples, flips))
