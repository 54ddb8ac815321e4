"""Small typed objects the stages pass to each other, and the interface each stage implements."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass
class Alignment:
    """How an aligned crop relates to its source photo (the JSON sidecar of DESIGN.md §2)."""

    matrix: np.ndarray  # (2, 3) float64, source pixel -> aligned pixel
    size: int  # the aligned crop is size × size
    landmarks: np.ndarray  # (5, 2) in source coordinates: l eye, r eye, nose, l mouth, r mouth
    score: float = 1.0
    source_path: str | None = None
    source_size: tuple[int, int] | None = None  # (w, h)
    aligner: str = ""

    def inverse(self) -> np.ndarray:
        """(2, 3) aligned pixel -> source pixel."""
        a = np.vstack([self.matrix, [0.0, 0.0, 1.0]])
        return np.linalg.inv(a)[:2]

    def to_json(self) -> dict[str, Any]:
        return {
            "source_path": self.source_path,
            "source_size": list(self.source_size) if self.source_size else None,
            "size": self.size,
            "matrix": np.asarray(self.matrix, dtype=float).round(8).tolist(),
            "landmarks": np.asarray(self.landmarks, dtype=float).round(3).tolist(),
            "score": float(self.score),
            "aligner": self.aligner,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Alignment":
        matrix = np.asarray(data["matrix"], dtype=np.float64)
        if matrix.shape != (2, 3):
            raise ValueError(f"matrix must be 2×3, got shape {matrix.shape}")
        if not np.isfinite(matrix).all() or abs(np.linalg.det(matrix[:, :2])) < 1e-9:
            raise ValueError("its matrix is singular or not finite: it maps no photo onto the crop")
        if int(data["size"]) <= 0:
            raise ValueError(f"size must be positive, got {data['size']}")
        return cls(
            matrix=matrix,
            size=int(data["size"]),
            landmarks=np.asarray(data.get("landmarks") or np.zeros((5, 2)), dtype=np.float64),
            score=float(data.get("score", 1.0)),
            source_path=data.get("source_path"),
            source_size=tuple(data["source_size"]) if data.get("source_size") else None,
            aligner=data.get("aligner", ""),
        )


@dataclass
class AlignedFace:
    image: np.ndarray  # (S, S, 3) uint8 RGB
    alignment: Alignment


@dataclass
class FaceMask:
    labels: np.ndarray  # (H, W) uint8 canonical labels
    parser: str = ""


@dataclass
class ComponentCodes:
    """Per-component appearance codes of one face, keyed by component name."""

    codes: dict[str, Any]
    mask: FaceMask
    encoder: str = ""


@dataclass
class PreparedFace:
    """A face ready to edit: the aligned crop, its mask, and (for photos) the photo and how to go back."""

    image: np.ndarray  # (S, S, 3) uint8 aligned face
    mask: FaceMask
    photo: np.ndarray | None = None  # the original photo, when the face came from one
    alignment: Alignment | None = None


@dataclass
class EditResult:
    aligned: np.ndarray  # (S, S, 3) uint8: the edited aligned face
    mask: FaceMask  # the target mask it was generated from
    pasted: np.ndarray | None = None  # the result pasted back into the source photo
    alignment: Alignment | None = None
    stages: dict[str, str] = field(default_factory=dict)  # stage -> implementation that ran
    notes: list[str] = field(default_factory=list)  # what the user should know (a component taken elsewhere)


@dataclass
class Outcome:
    """What a batch command did with one input: status is done, skipped (outputs exist), no-face,
    unreadable or failed; error says why for the last three."""

    source: Path
    status: str
    outputs: list[Path] = field(default_factory=list)
    error: str | None = None
    note: str | None = None  # what the user should know of a finished input (e.g. an unusable sidecar ignored)

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES


FAILED_STATUSES = ("no-face", "unreadable", "failed")


@runtime_checkable
class Aligner(Protocol):
    def align(self, image: np.ndarray, *, size: int = 256, all_faces: bool = False) -> list[AlignedFace]:
        """Detect faces in an RGB photo (H, W, 3) and return them aligned, largest first."""


@runtime_checkable
class Parser(Protocol):
    def parse(self, image: np.ndarray) -> FaceMask:
        """Aligned RGB face (S, S, 3) -> canonical label mask (S, S)."""


@runtime_checkable
class Encoder(Protocol):
    def encode(self, image: np.ndarray, mask: FaceMask) -> ComponentCodes:
        """Aligned face and its mask -> per-component codes."""


@runtime_checkable
class Generator(Protocol):
    def generate(self, codes: ComponentCodes, target: FaceMask) -> np.ndarray:
        """Component codes placed on a target mask -> foreground face (S, S, 3) uint8."""


@runtime_checkable
class Fuser(Protocol):
    def fuse(self, foreground: np.ndarray, background: np.ndarray, target: FaceMask,
             background_mask: FaceMask | None = None) -> np.ndarray:
        """Generated foreground + the target photo (whose own mask is background_mask, when known) -> final
        aligned image (S, S, 3) uint8."""


STAGE_PROTOCOLS: dict[str, type] = {
    "align": Aligner, "parse": Parser, "encode": Encoder, "generate": Generator, "fuse": Fuser,
}
STAGES: tuple[str, ...] = tuple(STAGE_PROTOCOLS)
