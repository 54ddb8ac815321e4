"""The parse stage over files: aligned faces or ordinary photos in, canonical label masks out.

An input counts as aligned when it has an alignment sidecar (`mgpe align` output) or when aligning it would
barely move it (a square crop already on the template); anything else is a photo, aligned first. A photo's
mask is written in the photo's own coordinates by default (`coords="original"`): the aligned mask warped
back with nearest-neighbour sampling, background outside the aligned crop; a photo parsed for its own
coordinates is parsed from a wider view around the face (CONTEXT), so hair beyond the aligned crop counts.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError, MgpeError, NoFaceError, UsageError
from .types import Alignment, FaceMask, Outcome

COORDS = ("auto", "aligned", "original")
# A mask in a photo's own coordinates is parsed from a crop that shows the face at this scale of the aligned
# crop: the aligned crop cuts off long hair, high hair and the shoulders (on lfw-hair it holds 92% of the hair
# pixels on average, under 70% in one photo of 20; this view 99.5%: benchmarks/hair_coverage.py). The `unet`
# parser is trained on such views.
CONTEXT = 0.7
# An image whose template fit is within these of the identity is taken as already aligned.
ALIGNED_SCALE_TOL = 0.06
ALIGNED_SHIFT_TOL = 0.04  # × image side


@dataclass
class ParsedFace:
    """One parsed face: the aligned crop, its mask, and how it maps back to the photo (None if the
    input was already aligned and has no sidecar)."""

    aligned: np.ndarray
    mask: FaceMask
    alignment: Alignment | None
    was_aligned: bool  # the input itself was an aligned crop
    photo_labels: np.ndarray | None = None  # for a photo parsed with context: its mask in the photo's coordinates
    note: str | None = None  # an unusable sidecar beside the image, ignored


def sidecar_alignment(image_path: Path, image: np.ndarray) -> Alignment | None:
    """The alignment sidecar beside an aligned image (`x.png` + `x.json`), if it matches the image."""
    return read_sidecar(image_path, image)[0]


def read_sidecar(image_path: Path, image: np.ndarray) -> tuple[Alignment | None, str | None]:
    """(the sidecar's Alignment, None), (None, why a sidecar beside the image is unusable), or (None, None)
    when there is none."""
    from .io import read_json

    side = image_path.with_suffix(".json")
    if not side.is_file():
        return None, None
    try:
        alignment = Alignment.from_json(read_json(side))
    except InputError as exc:
        return None, f"{side.name} is {exc.problem}" if exc.problem.startswith("not") else exc.problem
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        detail = f"no {exc}" if isinstance(exc, KeyError) else str(exc)
        return None, f"{side.name} is not a usable alignment sidecar ({detail})"
    h, w = image.shape[:2]
    if not alignment.size == w == h:
        return None, f"{side.name} is for a {alignment.size}² crop and the image is {w}×{h}"
    return alignment, None


def sidecar_note(problem: str) -> str:
    return f"{problem}: it was ignored, and the image was taken as a photo of its own"


def looks_aligned(matrix: np.ndarray, side: int) -> bool:
    """True when a photo -> template matrix at the photo's own size is close to the identity."""
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    rot = abs(float(np.arctan2(matrix[1, 0], matrix[0, 0])))
    return abs(scale - 1) < ALIGNED_SCALE_TOL and rot < 0.05 and \
        float(np.abs(matrix[:, 2]).max()) < ALIGNED_SHIFT_TOL * side


def parse_image(pipe, image: np.ndarray, *, path: Path | None = None, size: int = 256,
                context: bool = False) -> ParsedFace:
    """Parse an aligned face, or the largest face of a photo; raises NoFaceError when there is none. With
    `context`, a photo is parsed from a wider view (CONTEXT) into `photo_labels`, not from the aligned crop."""
    alignment, problem = read_sidecar(path, image) if path is not None else (None, None)
    if alignment is not None:
        return ParsedFace(image, pipe.parse(image), alignment, True)
    parsed = _parse_photo(pipe, image, size, context)
    parsed.note = sidecar_note(problem) if problem else None
    return parsed


def labels_in_photo(pipe, image: np.ndarray, size: int = 256) -> np.ndarray | None:
    """The largest face's labels in the photo's own coordinates, parsed from the wider view (`mgpe parse --coords
    original`) of size²; a photo that already looks like an aligned face is parsed as one. None when there is no
    face."""
    try:
        parsed = parse_image(pipe, image, size=size, context=True)
    except NoFaceError:
        return None
    return parsed.photo_labels if parsed.photo_labels is not None else parsed.mask.labels


def _parse_photo(pipe, image: np.ndarray, size: int, context: bool) -> ParsedFace:
    h, w = image.shape[:2]
    if h == w:
        faces = pipe.align(image, size=w)
        if not faces:
            raise NoFaceError("no face found")
        if looks_aligned(faces[0].alignment.matrix, w):
            return ParsedFace(image, pipe.parse(image), None, True)
    faces = pipe.align(image, size=size)
    if not faces:
        raise NoFaceError("no face found")
    face = faces[0]
    if context:
        from .align import warp_crop, zoomed

        wide = zoomed(face.alignment.matrix, size, CONTEXT)
        mask = pipe.parse(warp_crop(image, wide, size))
        labels = mask_to_photo(mask.labels, wide, (w, h))
        return ParsedFace(face.image, mask, face.alignment, False, photo_labels=labels)
    return ParsedFace(face.image, pipe.parse(face.image), face.alignment, False)


# A crop pixel spanning more photo pixels than this (on a side) is warped smoothly (`mask_to_photo`).
SMOOTH_ABOVE = 1.5


def mask_to_photo(mask: np.ndarray, alignment: Alignment | np.ndarray, photo_size: tuple[int, int]) -> np.ndarray:
    """A crop's mask warped into the photo (w, h), background outside the crop. The crop is given by its
    Alignment or its photo -> crop matrix. Where the photo is finer than the crop (a large face in a large photo),
    each label's area is warped with linear interpolation and the largest wins, so edges stay smooth instead of
    turning into steps of one crop pixel; otherwise nearest-neighbour."""
    import cv2

    w, h = photo_size
    if isinstance(alignment, Alignment):
        inverse = alignment.inverse()
    else:
        inverse = np.linalg.inv(np.vstack([alignment, [0.0, 0.0, 1.0]]))[:2]
    if np.sqrt(abs(np.linalg.det(inverse[:, :2]))) <= SMOOTH_ABOVE:
        return cv2.warpAffine(mask, inverse, (w, h), flags=cv2.INTER_NEAREST,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    # Only the crop's footprint in the photo is worked on.
    mh, mw = mask.shape[:2]
    corners = np.array([[0, 0, 1], [mw, 0, 1], [0, mh, 1], [mw, mh, 1]], np.float64) @ inverse.T
    x0, y0 = np.clip(np.floor(corners.min(0)).astype(int) - 1, 0, (w, h))
    x1, y1 = np.clip(np.ceil(corners.max(0)).astype(int) + 1, 0, (w, h))
    out = np.zeros((h, w), np.uint8)
    if x1 <= x0 or y1 <= y0:
        return out
    shifted = inverse - np.array([[0, 0, x0], [0, 0, y0]], np.float64)
    best = np.zeros((y1 - y0, x1 - x0), np.uint8)
    part = out[y0:y1, x0:x1]
    for k in np.unique(mask):
        share = cv2.warpAffine((mask == k).astype(np.uint8) * 255, shifted, (x1 - x0, y1 - y0),
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=255 if k == 0 else 0)
        wins = share > best
        part[wins] = k
        best[wins] = share[wins]
    return out


def parse_one(pipe, source: Path, stem: Path, *, coords: str = "auto", preview: bool = False, size: int = 256,
              overwrite: bool = False, fmt: str = "canonical") -> Outcome:
    """Parse one image into `stem`.png (label mask in `fmt`, see labels.MASK_FORMATS) [+ `stem`.preview.png, in
    our colours]; with aligned coordinates for a photo, also the aligned crop `stem`.aligned.png and its
    sidecar. Atomic; skips finished outputs."""
    from .io import preview_path, read_image, write_image, write_json, write_mask
    from .labels import MASK_FORMATS, colorize, to_format

    if coords not in COORDS:
        raise UsageError(f"--coords must be one of {', '.join(COORDS)}, not {coords!r}")
    if fmt not in MASK_FORMATS:
        raise UsageError(f"--format must be one of {', '.join(MASK_FORMATS)}, not {fmt!r}")
    out = stem.with_name(stem.name + ".png")  # a stem may hold dots (`my.photo`)
    if not overwrite and out.exists() and (not preview or preview_path(out).exists()):
        return Outcome(source, "skipped", [out])
    try:
        image = read_image(source)
    except InputError as exc:
        return Outcome(source, "unreadable", error=exc.problem)
    try:
        parsed = parse_image(pipe, image, path=source, size=size, context=coords in ("auto", "original"))
    except NoFaceError as exc:
        return Outcome(source, "no-face", error=str(exc))
    except MgpeError as exc:
        return Outcome(source, "failed", error=str(exc))
    except Exception as exc:  # a plugin's bug fails this file, not the run
        return Outcome(source, "failed", error=f"parser failed: {type(exc).__name__}: {exc}")
    labels = parsed.mask.labels
    outputs = []
    to_photo = coords == "original" or (coords == "auto" and not parsed.was_aligned)
    if to_photo:
        if parsed.photo_labels is not None:
            labels = parsed.photo_labels
        elif parsed.alignment is None and parsed.was_aligned:
            pass  # an aligned crop without a sidecar is its own photo: its coordinates are the photo's
        elif parsed.alignment is None or parsed.alignment.source_size is None:
            return Outcome(source, "failed", error="an aligned image without its .json sidecar cannot be "
                                                   "mapped back to its photo (use --coords aligned)")
        else:
            labels = mask_to_photo(labels, parsed.alignment, tuple(parsed.alignment.source_size))
    elif not parsed.was_aligned:
        crop = stem.with_name(stem.name + ".aligned.png")
        parsed.alignment.source_path = str(source.resolve())
        write_json(crop.with_suffix(".json"), parsed.alignment.to_json())
        write_image(crop, parsed.aligned)
        outputs.append(crop)
    outputs.insert(0, write_mask(out, to_format(labels, fmt)))
    if preview:  # drawn from the canonical mask, so the colours mean the same in every format
        write_image(preview_path(out), colorize(labels))
    return Outcome(source, "done", outputs, note=parsed.note)
