"""Datasets of aligned faces: pairs of images and canonical label masks, from folders, the CelebAMask-HQ
layout or the synthetic portraits; read for training, calibration and measurement.

Every dataset answers `len()` and `load(i) -> Sample`; `load` raises InputError for a bad file, and
`SampleSource` turns that into a warning and a substitute sample, so a bad file never ends a long run.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from ..errors import InputError, UsageError
from ..labels import LABEL_INDEX, NOT_HAIR, SWAP_SIDES, from_bisenet, from_helen
from .sample import Sample

LABEL_FORMATS = ("canonical", "helen", "bisenet")


class Dataset(Protocol):
    def __len__(self) -> int: ...

    def load(self, index: int) -> Sample: ...

    def describe(self) -> str: ...


class SyntheticSet:
    """`n` seeded procedural portraits (exact masks), starting at `seed`."""

    def __init__(self, n: int, size: int = 128, seed: int = 0):
        self.n, self.size, self.seed = n, size, seed

    def __len__(self) -> int:
        return self.n

    def load(self, index: int) -> Sample:
        from ..data.synthetic import synthetic_portrait

        p = synthetic_portrait(self.seed + index, self.size)
        return Sample(p.image, p.mask, f"synthetic-{self.seed + index}")

    def describe(self) -> str:
        return f"synthetic portraits: {self.n} at {self.size}², seeds {self.seed}..{self.seed + self.n - 1}"


class PairFolder:
    """Images and masks paired by relative stem: `images_dir/a/b.jpg` with `masks_dir/a/b.png`."""

    def __init__(self, images_dir: str | Path, masks_dir: str | Path, labels: str = "canonical"):
        from ..io import list_images

        if labels not in LABEL_FORMATS:
            raise UsageError(f"--labels must be one of {', '.join(LABEL_FORMATS)}, not {labels!r}")
        self.images_dir, self.masks_dir, self.labels = Path(images_dir), Path(masks_dir), labels
        self.pairs: list[tuple[Path, Path]] = []
        for img in list_images(self.images_dir):
            rel = img.relative_to(self.images_dir).with_suffix("")
            if rel.name.endswith((".preview", ".aligned", ".mask")):
                continue
            mask = self.masks_dir / rel.with_suffix(".png")
            if mask.is_file():
                self.pairs.append((img, mask))
        if not self.pairs:
            raise UsageError(f"{self.images_dir}: no image has a mask of the same name under {self.masks_dir}")

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> Sample:
        from ..io import read_image, read_mask

        img_path, mask_path = self.pairs[index]
        image, mask = read_image(img_path), read_mask(mask_path)
        if self.labels == "helen":
            mask = from_helen(mask)
        elif self.labels == "bisenet":
            mask = from_bisenet(mask)
        if image.shape[:2] != mask.shape:
            raise InputError(mask_path, f"mask is {mask.shape[1]}×{mask.shape[0]}, its image "
                                        f"{image.shape[1]}×{image.shape[0]}")
        return Sample(image, mask, str(img_path))

    def describe(self) -> str:
        return f"{len(self)} pairs from {self.images_dir} + {self.masks_dir} ({self.labels} labels)"


def open_dataset(data: str, masks: str | None = None, labels: str = "canonical", size: int = 128,
                 option: str = "--data") -> Dataset:
    """`synthetic:N`, a travel pack or one of its parts (data.pack), a CelebAMask-HQ folder, a folder with images/
    and masks/ (or labels/) inside, or an image folder plus `masks` (e.g. what `mgpe align` + `mgpe parse` write;
    Helen with labels="helen")."""
    if data.startswith("synthetic:"):
        try:
            n = int(data.split(":", 1)[1])
        except ValueError:
            raise UsageError(f"{option} {data!r}: expected synthetic:N with N a number") from None
        if n < 1:
            raise UsageError(f"{option} {data!r}: N must be at least 1")
        return SyntheticSet(n, size)
    root = Path(data)
    if not root.is_dir():
        hint = " (the built-in portraits are synthetic:N, e.g. synthetic:1000)" if data == "synthetic" else ""
        raise UsageError(f"{option} {data}: no such folder{hint}")
    from .pack import AlignedPack, is_pack, is_pack_part, pack_parts

    if is_pack(root) or is_pack_part(root):
        parts = [AlignedPack(p) for p in pack_parts(root)]
        return parts[0] if len(parts) == 1 else Mixture(parts)
    if (root / "CelebAMask-HQ-mask-anno").is_dir():
        return CelebAMaskHQ(root)
    if masks:
        return PairFolder(root, masks, labels)
    for sub in ("masks", "labels"):
        if (root / "images").is_dir() and (root / sub).is_dir():
            return PairFolder(root / "images", root / sub, labels)
    raise UsageError(f"{option} {data}: expected images/ and masks/ (or labels/) inside, or give --masks DIR")


# SWAP_SIDES, keeping the training-only NOT_HAIR.
_FLIP = SWAP_SIDES.copy()
_FLIP[NOT_HAIR] = NOT_HAIR


def flip_sample(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror an image and its mask; l_/r_ labels swap so they still name the image side."""
    return np.ascontiguousarray(image[:, ::-1]), _FLIP[mask[:, ::-1]]


class SampleSource:
    """Loads samples at a fixed size; a bad file is reported once through `warn` and replaced by the next good
    one, and is not tried again."""

    def __init__(self, dataset: Dataset, size: int | None, warn: Callable[[str], None] | None = None):
        self.dataset, self.size = dataset, size  # size None: samples as loaded
        self.warn = warn or (lambda message: None)
        self.bad: set[int] = set()

    def get(self, index: int) -> Sample:
        import cv2

        n = len(self.dataset)
        for k in range(n):
            i = (index + k) % n
            if i in self.bad:
                continue
            try:
                s = self.dataset.load(i)
            except InputError as exc:
                self.bad.add(i)
                self.warn(f"skipped {exc}")
                continue
            if self.size is not None and (s.image.shape[0] != self.size or s.image.shape[1] != self.size):
                interp = cv2.INTER_AREA if s.image.shape[0] > self.size else cv2.INTER_LINEAR
                s = Sample(cv2.resize(s.image, (self.size, self.size), interpolation=interp),
                           cv2.resize(s.mask, (self.size, self.size), interpolation=cv2.INTER_NEAREST), s.name)
            return s
        raise UsageError(f"no usable sample in {self.dataset.describe()}")


class Mixture:
    """Several datasets as one: index i runs through the first, then the second, ... With `balanced`, each part
    counts as long as the longest (its samples repeated), so a step draws from every part equally often."""

    def __init__(self, parts: list, balanced: bool = False):
        if not parts:
            raise UsageError("no training data given")
        self.parts, self.balanced = parts, balanced
        longest = max(len(p) for p in parts)
        self.starts = np.cumsum([0] + [longest if balanced else len(p) for p in parts])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def load(self, index: int) -> Sample:
        k = int(np.searchsorted(self.starts, index, side="right")) - 1
        return self.parts[k].load((index - int(self.starts[k])) % len(self.parts[k]))

    def describe(self) -> str:
        return " + ".join(p.describe() for p in self.parts) + (", drawn equally often" if self.balanced else "")


# CelebAMask-HQ part files, in the order the dataset's own mask script paints them (later parts win).
CELEBAMASK_PARTS = ("skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear", "mouth",
                    "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth")


class CelebAMaskHQ:
    """The CelebAMask-HQ layout: `CelebA-HQ-img/N.jpg` and `CelebAMask-HQ-mask-anno/K/NNNNN_part.png`
    (K = N // 2000). Parts are merged into one canonical mask at the annotation's resolution, the image is
    resized to it, and l_/r_ are re-assigned by centroid (the part files' left/right are not trusted)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.img_dir = self.root / "CelebA-HQ-img"
        self.anno_dir = self.root / "CelebAMask-HQ-mask-anno"
        if not self.img_dir.is_dir() or not self.anno_dir.is_dir():
            raise UsageError(f"{self.root}: not a CelebAMask-HQ folder (needs CelebA-HQ-img/ and CelebAMask-HQ-mask-anno/)")
        self.ids = sorted(int(p.stem) for p in self.img_dir.glob("*.jpg") if p.stem.isdigit())
        if not self.ids:
            raise UsageError(f"{self.img_dir}: no N.jpg images")

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int) -> Sample:
        import cv2

        from ..io import read_image
        from ..labels import assign_sides

        n = self.ids[index]
        image = read_image(self.img_dir / f"{n}.jpg")
        folder = self.anno_dir / str(n // 2000)
        mask = None
        for part in CELEBAMASK_PARTS:
            path = folder / f"{n:05d}_{part}.png"
            if not path.is_file():
                continue
            part_img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if part_img is None:
                raise InputError(path, "unreadable part mask")
            if mask is None:
                mask = np.zeros(part_img.shape, np.uint8)
            if part_img.shape != mask.shape:
                raise InputError(path, f"part is {part_img.shape[1]}×{part_img.shape[0]}, others {mask.shape[1]}×{mask.shape[0]}")
            mask[part_img > 127] = LABEL_INDEX[part]
        if mask is None:
            raise InputError(folder / f"{n:05d}_*.png", "no part masks for this image")
        if image.shape[:2] != mask.shape:
            image = cv2.resize(image, (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_AREA)
        return Sample(image, assign_sides(mask), str(self.img_dir / f"{n}.jpg"))

    def describe(self) -> str:
        return f"CelebAMask-HQ at {self.root}: {len(self)} images"
