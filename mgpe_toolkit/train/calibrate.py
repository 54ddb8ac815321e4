"""Calibrating a trained parser: one logit offset per class, fitted on its training photos, added to the head's bias.

Class-weighted cross-entropy (train/parser.py) moves every boundary towards the rarer class: the parser trained
that way drew eyes, brows, lips and ears 14-20% larger than the hand-made masks of held-out CelebAMask-HQ portraits.
Offsets chosen to maximise pixel accuracy + mean F1 on the training split take that back without training; the
two sides of a pair (l_eye / r_eye, ...) share one offset, so a mirrored face still gets the mirrored mask.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..labels import IGNORE, LABEL_INDEX, NUM_CLASSES, SIDE_PAIRS, SWAP_SIDES

GRID = np.round(np.arange(-2.0, 2.0001, 0.1), 1)  # offsets tried per class, in logits
ROUNDS = 3  # passes of coordinate ascent over the classes
PIXELS_PER_VIEW = 2048  # pixels drawn from each view of each photo (pooled F1 is a pixel count: draws keep it)


def groups(classes: int = NUM_CLASSES) -> list[tuple[int, ...]]:
    """Classes that share an offset: each side pair together, every other class alone."""
    paired = {LABEL_INDEX[a]: LABEL_INDEX[b] for a, b in SIDE_PAIRS}
    taken = set(paired.values())
    return [(k, paired[k]) if k in paired else (k,) for k in range(classes) if k not in taken]


def scores(truth: np.ndarray, pred: np.ndarray, classes: int = NUM_CLASSES) -> tuple[float, float]:
    """(pixel accuracy, mean F1 over the classes other than background) of pooled pixels."""
    cm = np.bincount(truth.astype(np.int64) * classes + pred, minlength=classes * classes).reshape(classes, classes)
    tp = np.diag(cm).astype(np.float64)
    f1 = 2 * tp / np.maximum(cm.sum(0) + cm.sum(1), 1)
    return float(tp.sum() / max(cm.sum(), 1)), float(f1[1:].mean())


def fit_offsets(logits: np.ndarray, truth: np.ndarray, grid: np.ndarray = GRID, rounds: int = ROUNDS) -> np.ndarray:
    """Per-class offsets (C,) for logits (C, N) of pixels whose true class is `truth` (N,), by coordinate ascent on
    accuracy + mean F1, sides tied (`groups`). Starts from zero; an offset moves only where it scores better."""
    classes = logits.shape[0]
    offsets = np.zeros(classes, np.float32)
    best = sum(scores(truth, logits.argmax(0), classes))
    for _ in range(rounds):
        for group in groups(classes):
            idx = list(group)
            rest = logits + offsets[:, None]
            rest[idx] = -np.inf
            other, other_class = rest.max(0), rest.argmax(0)
            mine = logits[idx].max(0)  # the group's members move together: the better one of them competes
            mine_class = np.asarray(idx)[logits[idx].argmax(0)]
            for value in grid:
                pred = np.where(mine + value > other, mine_class, other_class)
                score = sum(scores(truth, pred, classes))
                if score > best + 1e-9:
                    best, offsets[idx] = score, value
    return offsets


def views(image: np.ndarray, labels: np.ndarray, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two views a parser is given of a cached context crop (the aligned crop at its centre): that crop, as an
    aligned portrait is parsed, and the whole context resized to `size`, as `mgpe parse` views a photo."""
    import cv2

    n = image.shape[0]
    lo = (n - size) // 2
    centre = np.s_[lo:lo + size, lo:lo + size]
    wide = (cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA),
            cv2.resize(labels, (size, size), interpolation=cv2.INTER_NEAREST))
    return [(image[centre], labels[centre]), wide]


def collect(model, samples: Sequence, size: int, *, pixels: int = PIXELS_PER_VIEW, seed: int = 0,
            progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(logits (C, N) float32, truth (N,) uint8) of pixels drawn from both `views` of each sample, with the logits
    as the parser computes them (the face and its mirror image averaged, sides swapped back); IGNORE left out."""
    import torch

    rng = np.random.default_rng(seed)
    out_logits, out_truth = [], []
    swap = torch.as_tensor(SWAP_SIDES[:NUM_CLASSES].astype(np.int64))
    for i in range(len(samples)):
        sample = samples.load(i)
        for image, labels in views(sample.image, sample.mask, size):
            x = torch.from_numpy(np.ascontiguousarray(image[..., :3])).permute(2, 0, 1).float() / 127.5 - 1.0
            with torch.no_grad():
                y = model(torch.stack([x, x.flip(-1)]))
            y = 0.5 * (y[0] + y[1][swap].flip(-1))
            known = np.flatnonzero(labels.ravel() != IGNORE)
            take = rng.choice(known, min(pixels, known.size), replace=False)
            out_logits.append(y.reshape(y.shape[0], -1)[:, torch.from_numpy(take)].numpy())
            out_truth.append(labels.ravel()[take])
        if progress:
            progress(i + 1, len(samples))
    return np.concatenate(out_logits, 1).astype(np.float32), np.concatenate(out_truth).astype(np.uint8)


def with_offsets(state: dict, offsets: np.ndarray, key: str = "head.bias") -> dict:
    """A parser state dict whose output layer adds `offsets` to each class's logit."""
    import torch

    bias = state[key]
    if bias.shape != (len(offsets),):
        raise ValueError(f"{key} has shape {tuple(bias.shape)}, offsets {len(offsets)}")
    return {**state, key: (bias.float() + torch.as_tensor(offsets, dtype=torch.float32)).to(bias.dtype)}
