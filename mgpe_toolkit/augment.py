"""Data augmentation for face parsing (paper §4.4): faces generated on existing masks with random sources."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import InputError, MgpeError, NoFaceError, UsageError


@dataclass
class AugmentResult:
    written: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)


def augment(pipe, masks: str | Path, sources: str | Path, *, n: int, out: str | Path, seed: int = 0,
            aligned: bool = False, overwrite: bool = False, log: Callable[[str], None] = print) -> AugmentResult:
    """For every mask under `masks`, `n` images from random source faces; writes images/ and masks/ pairs."""
    import cv2

    from .io import list_images, read_image, read_mask, write_image, write_mask

    masks, sources, out = Path(masks), Path(sources), Path(out)
    if not masks.is_dir() or not sources.is_dir():
        raise UsageError(f"--masks {masks} and --sources {sources} must be folders")
    result = AugmentResult()
    faces = []
    for path in list_images(sources):
        try:
            faces.append(pipe.prepare(read_image(path), aligned=aligned))
        except (InputError, NoFaceError) as exc:
            result.problems.append(f"{path}: {getattr(exc, 'problem', None) or exc}")
            log(f"skipped source {path}: {getattr(exc, 'problem', None) or exc}")
    if not faces:
        raise UsageError(f"--sources {sources}: no usable face")
    rng = np.random.default_rng(seed)
    for mask_path in sorted(p for p in masks.rglob("*.png") if not p.name.endswith(".preview.png")):
        stem = mask_path.relative_to(masks).with_suffix("")
        try:
            target = read_mask(mask_path)
        except InputError as exc:
            result.problems.append(str(exc))
            log(f"skipped {exc}")
            continue
        picks = rng.choice(len(faces), size=n, replace=len(faces) < n)
        for k, i in enumerate(picks):
            img_out = out / "images" / f"{stem}_{k}.png"
            mask_out = out / "masks" / f"{stem}_{k}.png"
            if not overwrite and img_out.exists() and mask_out.exists():
                result.skipped += 1
                continue
            face = faces[int(i)]
            if face.image.shape[:2] != target.shape:
                face = pipe.prepare(cv2.resize(face.image, target.shape[::-1], interpolation=cv2.INTER_AREA),
                                    aligned=True)
            try:
                image = pipe.synth(target, [face])[0].aligned
            except MgpeError as exc:
                result.problems.append(f"{mask_path} with source {int(i)}: {exc}")
                continue
            write_mask(mask_out, target)  # the mask first: an image without its mask is redone
            write_image(img_out, image)
            result.written += 1
    return result
