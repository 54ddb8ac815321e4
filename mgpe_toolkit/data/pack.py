"""Travel packs: the training split of label caches (train.pseudo) as ready-made crops and labels in one small
folder, for training where neither the photos nor ../shared are (a lent GPU takes 64 MiB along).

    PACK/pack.json                    {"format": "mgpe-pack", "parts": [...]}
    PACK/<part>/index.json            kind, split, sizes, the source and its terms, stored size per photo
    PACK/<part>/images/NAME.jpg       the photo's context crop (the aligned 256² crop at its centre), stored at
                                      the photo's own resolution where that is below the crop's (LFW: ~263²)
    PACK/<part>/labels/NAME.png       the cache's labels (CONTEXT_SIZE², IGNORE = 255 where unsure)

An aligned pack (`aligned=True`) keeps only the aligned crop and its labels: its context size is its size.

`PackedPhotos` reads a part as the cache did (parser training, context crops); `AlignedPack` reads it as aligned
image/mask pairs for the paper's networks (the centre crop; IGNORE filled from the nearest label).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..errors import InputError, UsageError
from ..labels import IGNORE, LABEL_INDEX, NOT_HAIR
from .sample import Sample

PACK_FILE = "pack.json"
PART_FILE = "index.json"
FORMAT = "mgpe-pack"
VERSION = 1
# What each kind of part holds, and the terms of the data it came from (a pack's README repeats them).
KIND_TEXT = {
    "celebamask": "hand-made masks of every class (CelebAMask-HQ order, sides re-assigned), aligned",
    "pseudo": "photos with hand-made hair masks; other classes pseudo-labelled",
}


def is_pack(root: Path) -> bool:
    return (Path(root) / PACK_FILE).is_file()


def is_pack_part(root: Path) -> bool:
    index = Path(root) / PART_FILE
    if not index.is_file():
        return False
    try:
        return json.loads(index.read_text()).get("format") == FORMAT
    except (OSError, ValueError):
        return False


def stored_size(matrix: np.ndarray, context_size: int) -> int:
    """The side at which a context crop keeps all the photo has: the crop's side times the photo's pixels per
    crop pixel, a multiple of 8, at most the crop's side."""
    scale = math.sqrt(abs(float(np.linalg.det(np.asarray(matrix, np.float64)[:, :2]))))  # crop px per photo px
    return int(min(context_size, 8 * math.ceil(context_size / max(scale, 1e-6) / 8)))


def write_part(cache, names: Iterable[str], out: Path, *, size: int, context_size: int, source: str, terms: str,
               quality: int = 85, aligned: bool = False, progress: Callable[[int, int], None] | None = None) -> dict:
    """Pack `names` of a label cache (`train.pseudo.LabelCache`: root, entries, kind, label_path; its aligned crops
    size², context crops context_size²) into `out`; resumable: photos already packed are kept. `aligned`: keep only
    the aligned size² crop (for the paper's networks; about a third of the bytes). Returns the part's index."""
    import cv2

    from ..io import atomic_path, read_image, write_json

    names = sorted(names)
    a = (context_size - size) // 2 if aligned else 0  # where the kept crop starts in the context crop
    context_size -= 2 * a
    index_path = out / PART_FILE
    old = json.loads(index_path.read_text()) if index_path.is_file() else {}
    same = all(old.get(k) == v for k, v in (("format", FORMAT), ("version", VERSION), ("kind", cache.kind),
                                            ("quality", quality), ("context_size", context_size)))
    entries: dict[str, int] = dict(old.get("entries", {})) if same else {}
    index = {"format": FORMAT, "version": VERSION, "kind": cache.kind, "split": "train", "size": size,
             "context_size": context_size, "source": source, "terms": terms, "quality": quality, "entries": entries}
    for done, rel in enumerate(names, 1):
        image_out = out / "images" / Path(rel).with_suffix(".jpg")
        label_out = out / "labels" / Path(rel).with_suffix(".png")
        if rel not in entries or not image_out.is_file() or not label_out.is_file():
            m = np.asarray(cache.entries[rel], np.float64).copy()
            m[:, 2] -= a
            side = stored_size(m, context_size)
            photo = read_image(cache.root / "images" / rel)
            s = side / context_size  # pixel centres kept where cv2.resize puts them on the way back
            stored = m * s
            stored[:, 2] += 0.5 * (s - 1)
            crop = cv2.warpAffine(photo, stored, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            labels = cv2.imread(str(cache.label_path(rel)), cv2.IMREAD_GRAYSCALE)
            if labels is None or labels.shape != (context_size + 2 * a,) * 2:
                raise InputError(cache.label_path(rel), "unreadable or wrong-sized label file (rebuild the cache)")
            labels = labels[a:a + context_size, a:a + context_size]
            for path, data, params in ((image_out, crop[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality]),
                                       (label_out, labels, [cv2.IMWRITE_PNG_COMPRESSION, 9])):
                path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(path) as tmp:
                    ok, buf = cv2.imencode(path.suffix, np.ascontiguousarray(data), params)
                    tmp.write_bytes(buf.tobytes())
            entries[rel] = side
            if done % 100 == 0:
                write_json(index_path, index)
        if progress:
            progress(done, len(names))
    for rel in set(entries) - set(names):  # left from an earlier pack of other photos
        del entries[rel]
    write_json(index_path, index)
    return index


def write_pack_file(root: Path) -> list[str]:
    """pack.json and README.md at a pack's root, listing its parts (and their terms)."""
    from ..io import atomic_path, write_json

    parts = sorted(p.name for p in root.iterdir() if is_pack_part(p))
    write_json(root / PACK_FILE, {"format": FORMAT, "version": VERSION, "parts": parts})
    lines = ["# A travel pack of training data (`mgpe train pack`)", "",
             "Aligned crops and labels of each part's training split; the held-out split is not in it.", ""]
    for name in parts:
        info = json.loads((root / name / PART_FILE).read_text())
        lines += [f"- `{name}/`: {len(info['entries'])} photos, {KIND_TEXT.get(info['kind'], info['kind'])}; "
                  f"from {info['source']}. Terms: {info['terms']}"]
    with atomic_path(root / "README.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return parts


class PackedPhotos:
    """A pack part as parser training samples: context crops (CONTEXT_SIZE²) and the cached labels. `hair_only`: a
    pseudo part's labels as hair, NOT_HAIR or IGNORE alone (as `CachedPhotos`)."""

    def __init__(self, root: str | Path, hair_only: bool = False):
        self.root = Path(root)
        if not is_pack_part(self.root):
            raise UsageError(f"{self.root}: not a pack part (no {PART_FILE} of format {FORMAT})")
        self.info = json.loads((self.root / PART_FILE).read_text())
        if self.info.get("version") != VERSION:
            raise UsageError(f"{self.root / PART_FILE}: pack version {self.info.get('version')}, expected {VERSION}; "
                             "pack it again")
        if hair_only and self.info["kind"] != "pseudo":
            raise UsageError(f"{self.root}: hair-only labels come from a hair folder's part, not a "
                             f"{self.info['kind']} one")
        self.kind, self.hair_only = self.info["kind"], hair_only
        self.names = sorted(self.info["entries"])
        if not self.names:
            raise UsageError(f"{self.root}: an empty pack part")
        self.size, self.context_size = int(self.info["size"]), int(self.info["context_size"])

    def __len__(self) -> int:
        return len(self.names)

    def _read(self, index: int) -> tuple[np.ndarray, np.ndarray, str]:
        import cv2

        from ..io import read_image

        rel = self.names[index]
        n = self.context_size
        image_path = self.root / "images" / Path(rel).with_suffix(".jpg")
        image = read_image(image_path)
        if image.shape[:2] != (n, n):
            image = cv2.resize(image, (n, n), interpolation=cv2.INTER_LINEAR)
        label_path = self.root / "labels" / Path(rel).with_suffix(".png")
        labels = cv2.imread(str(label_path), cv2.IMREAD_GRAYSCALE)
        if labels is None or labels.shape != (n, n):
            raise InputError(label_path, f"unreadable or not {n}×{n} (pack it again)")
        return image, labels, str(image_path)

    def load(self, index: int):
        image, labels, name = self._read(index)
        if self.hair_only:
            hair = LABEL_INDEX["hair"]
            labels = np.where(labels == hair, hair, np.where(labels == IGNORE, IGNORE, NOT_HAIR)).astype(np.uint8)
        return Sample(image, labels, name, context=self.context_size / self.size)

    def describe(self) -> str:
        labels = "hair vs not hair" if self.hair_only else KIND_TEXT.get(self.kind, self.kind)
        return f"{len(self)} photos packed in {self.root} ({labels}; from {self.info['source']})"


def fill_ignored(labels: np.ndarray) -> np.ndarray:
    """Labels with every IGNORE pixel given its nearest known label (background where nothing is known)."""
    import cv2

    unsure = labels == IGNORE
    if not unsure.any():
        return labels
    if unsure.all():
        return np.zeros_like(labels)
    # Each known pixel is a zero of the input and gets its own index, in raster order; unsure pixels take the
    # index of the nearest one.
    _, nearest = cv2.distanceTransformWithLabels(unsure.astype(np.uint8), cv2.DIST_L2, 5,
                                                 labelType=cv2.DIST_LABEL_PIXEL)
    known = labels[~unsure]
    return known[nearest - 1].astype(labels.dtype)


def aligned_centre(image: np.ndarray, labels: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The aligned size² crop at the centre of a context crop and its labels, IGNORE filled (`fill_ignored`)."""
    a = (image.shape[0] - size) // 2
    window = np.s_[a:a + size, a:a + size]
    return np.ascontiguousarray(image[window]), fill_ignored(np.ascontiguousarray(labels[window]))


class AlignedPack:
    """A pack part as aligned image/mask pairs (size²) for the paper's networks: the centre of each context crop,
    IGNORE filled from the nearest label."""

    def __init__(self, root: str | Path):
        self.part = PackedPhotos(root)

    def __len__(self) -> int:
        return len(self.part)

    def load(self, index: int):
        image, labels, name = self.part._read(index)
        return Sample(*aligned_centre(image, labels, self.part.size), name)

    def describe(self) -> str:
        return f"{len(self)} aligned pairs packed in {self.part.root} (from {self.part.info['source']})"


def pack_parts(root: str | Path) -> list[Path]:
    """The part folders of a pack root, or [root] for a part."""
    root = Path(root)
    if is_pack_part(root):
        return [root]
    if not is_pack(root):
        raise UsageError(f"{root}: not a pack (no {PACK_FILE}) nor a pack part")
    names = json.loads((root / PACK_FILE).read_text()).get("parts", [])
    missing = [n for n in names if not is_pack_part(root / n)]
    if missing or not names:
        raise UsageError(f"{root / PACK_FILE}: part(s) {', '.join(missing) or '(none)'} missing; pack it again")
    return [root / n for n in names]
