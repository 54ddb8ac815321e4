"""Per-pixel accuracy and per-class IoU of label masks, accumulated over many images."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Confusion:
    """A confusion matrix over `names` (rows: truth, columns: prediction)."""

    names: tuple[str, ...]
    matrix: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self):
        if self.matrix is None:
            self.matrix = np.zeros((len(self.names), len(self.names)), dtype=np.int64)

    def add(self, truth: np.ndarray, pred: np.ndarray) -> "Confusion":
        if truth.shape != pred.shape:
            raise ValueError(f"truth {truth.shape} and prediction {pred.shape} differ in shape")
        n = len(self.names)
        idx = truth.astype(np.int64).ravel() * n + pred.astype(np.int64).ravel()
        self.matrix += np.bincount(idx, minlength=n * n).reshape(n, n)
        return self

    @property
    def accuracy(self) -> float:
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else float("nan")

    def iou(self) -> dict[str, float]:
        """IoU per class present in the truth or the prediction (absent classes are left out)."""
        tp = np.diag(self.matrix)
        union = self.matrix.sum(0) + self.matrix.sum(1) - tp
        return {name: float(tp[i] / union[i]) for i, name in enumerate(self.names) if union[i] > 0}

    def f1(self) -> dict[str, float]:
        """F1 (Dice) per class present in the truth or the prediction: 2 TP / (2 TP + FP + FN)."""
        tp = np.diag(self.matrix)
        both = self.matrix.sum(0) + self.matrix.sum(1)
        return {name: float(2 * tp[i] / both[i]) for i, name in enumerate(self.names) if both[i] > 0}

    def mean_iou(self) -> float:
        values = list(self.iou().values())
        return float(np.mean(values)) if values else float("nan")


def merge_classes(mask: np.ndarray, names: tuple[str, ...], groups: dict[str, tuple[str, ...]]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Relabel `mask` (indices into `names`) so each group becomes one class; returns (mask, new names)."""
    grouped = {member: g for g, members in groups.items() for member in members}
    new_names: list[str] = []
    lut = np.zeros(max(256, len(names)), dtype=np.uint8)
    for i, name in enumerate(names):
        target = grouped.get(name, name)
        if target not in new_names:
            new_names.append(target)
        lut[i] = new_names.index(target)
    return lut[mask], tuple(new_names)


# Helen merges nothing by itself; the usual protocol (and the figures in docs/benchmarks.md) merges the lips.
HELEN_LIPS = {"lips": ("u_lip", "l_lip", "inner_mouth")}


def score_against_truth(pred: np.ndarray, truth: np.ndarray, truth_format: str = "canonical", *,
                        merge: dict[str, tuple[str, ...]] | None = None) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Bring a canonical prediction and a truth mask in `truth_format` (canonical, celebamask, helen or bisenet)
    into one label space, merging `merge` groups; returns (truth, prediction, class names) for a Confusion."""
    from ..labels import HELEN_LABELS, LABELS, from_bisenet, from_format, to_helen

    if truth_format == "helen":
        pred, names = to_helen(pred, strict=False), HELEN_LABELS
    elif truth_format == "bisenet":
        truth, names = from_bisenet(truth), LABELS
    elif truth_format == "celebamask":
        truth, names = from_format(truth, "celebamask"), LABELS  # sides as the data has them
    elif truth_format == "canonical":
        names = LABELS
    else:
        raise ValueError(f"unknown label format {truth_format!r} (canonical, celebamask, helen or bisenet)")
    if merge:
        truth, merged = merge_classes(truth, names, merge)
        pred, _ = merge_classes(pred, names, merge)
        names = merged
    return truth, pred, names
