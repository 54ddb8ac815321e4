"""Real photos as parser training data, aligned once into a label cache: photos in the wild with hand-made hair
masks (the lfw-hair layout, pseudo-labelled), and portraits with hand-made masks of every class (celebamask-mini).

A folder with `images/NAME.jpg` and `hair/NAME.png` (255 = hair) gets full 19-class pseudo-labels on a crop
wider than the aligned one (CONTEXT_SIZE², the aligned 256² crop at its centre): hair from the hand-made mask;
skin, brows, eyes, nose, lips and inner mouth from the face mesh (accurate); person vs backdrop from
mediapipe's selfie model; ears, neck and cloth from the `mesh` parser's heuristics; above the brows near the
face, a bald head (skin-coloured) or head wear. What none of them can vouch for is IGNORE (255) and left out of
the loss: a band along the coarse boundaries (not between the mesh's parts), beards (the mask says hair where
our labels say skin), brows under a fringe, unsure backdrop, heads away from this face.

Labels are built once into a cache folder (`labels/NAME.png` + `index.json` with each crop's 2×3 matrix) that
later runs, and machines without the photos, reuse. People are split by name (LFW's `First_Last_0001`): a
fixed hash puts about 15% of them in the held-out split, never trained on.

A folder with `images/NAME.jpg` and `masks/NAME.png` in CelebAMask-HQ's order and side convention (the subject's
left is `l_`) is aligned with our aligner and its mask warped with it (nearest), sides re-assigned by centroid:
real labels, IGNORE only outside the photo. Its held-out split is the same hash of the file name.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError, UsageError
from ..labels import IGNORE, LABEL_INDEX, NOT_HAIR

HOLDOUT_PERCENT = 15
SIZE = 256
CACHE_VERSION = 2
# What a cache holds: pseudo-labels of a hair folder, or the real masks of a celebamask folder.
KINDS = ("pseudo", "celebamask")
# Half-widths (pixels, at the aligned face's scale) of the ignored bands: along boundaries that involve a heuristic
# label, and wider along the hand-made hair mask (drawn on LFW's superpixels) and the selfie model's person mask.
BAND = 1
COARSE_BAND = 3


def person_of(name: str) -> str:
    """LFW names photos `First_Last_0003`: the person is the name without its number."""
    return re.sub(r"_\d+$", "", Path(name).stem)


def held_out(name: str, percent: int = HOLDOUT_PERCENT) -> bool:
    """True for the people (not photos) in the held-out split: a fixed hash of the person's name."""
    digest = hashlib.sha1(person_of(name).encode()).hexdigest()
    return int(digest[:8], 16) % 100 < percent


def is_hair_folder(root: Path) -> bool:
    return (root / "images").is_dir() and (root / "hair").is_dir()


def hair_pairs(root: Path) -> list[tuple[Path, Path]]:
    from ..io import list_images

    pairs = []
    for img in list_images(root / "images"):
        hair = root / "hair" / img.relative_to(root / "images").with_suffix(".png")
        if hair.is_file():
            pairs.append((img, hair))
    if not pairs:
        raise UsageError(f"{root}: no image in images/ has a hair mask of the same name in hair/")
    return pairs


def is_celebamask_folder(root: Path) -> bool:
    return (root / "images").is_dir() and (root / "masks").is_dir() and not (root / "hair").is_dir()


def mask_pairs(root: Path) -> list[tuple[Path, Path]]:
    """images/NAME.* with masks/NAME.png (a celebamask-mini folder)."""
    from ..io import list_images

    pairs = [(img, root / "masks" / img.relative_to(root / "images").with_suffix(".png"))
             for img in list_images(root / "images")]
    pairs = [(i, m) for i, m in pairs if m.is_file()]
    if not pairs:
        raise UsageError(f"{root}: no image in images/ has a mask of the same name in masks/")
    return pairs


def _pairs(root: Path, kind: str) -> list[tuple[Path, Path]]:
    if kind not in KINDS:
        raise UsageError(f"label cache kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return hair_pairs(root) if kind == "pseudo" else mask_pairs(root)


def read_hair(path: Path) -> np.ndarray:
    """A hand-made hair mask as bool (H, W): any value above half is hair."""
    import cv2

    m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise InputError(path, "unreadable hair mask")
    return m > 127


def _band(labels: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within `radius` of a boundary between two different labels."""
    import cv2

    k = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(labels, k) != cv2.erode(labels, k)


def _edge(mask: np.ndarray, radius: int) -> np.ndarray:
    return _band(mask.astype(np.uint8), radius)


FACE_PARTS = [LABEL_INDEX[n] for n in ("skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip",
                                       "l_lip")]


def _skin_distance(image: np.ndarray, mesh: np.ndarray, oval: np.ndarray) -> np.ndarray:
    """Per-pixel Lab distance (in standard deviations) to the skin of the cheeks."""
    import cv2

    from ..stages.parse_mesh import _colour_distance, _colour_model

    lab = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2LAB).astype(np.float32)
    eye_y, mouth_y = float(mesh[[468, 473], 1].mean()), float(mesh[[13, 14], 1].mean())
    inner = cv2.erode(oval.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    yy = np.mgrid[0:oval.shape[0], 0:oval.shape[1]][0]
    cheeks = inner & (yy > eye_y + 4) & (yy < mouth_y - 4)
    if cheeks.sum() < 20:
        cheeks = oval
    return _colour_distance(lab, *_colour_model(lab[cheeks]))


def pseudo_labels(aligned: np.ndarray, hair: np.ndarray, parser) -> np.ndarray:
    """(S, S) uint8 canonical labels with IGNORE where unsure, for an aligned face and its hair mask (bool,
    same size); `parser` is a MeshParser (its mesh, selfie model and heuristics)."""
    import cv2

    from ..stages.parse_mesh import CHIN, FACE_OVAL, NOSE_TIP, BROW_IMAGE_LEFT, BROW_IMAGE_RIGHT, _fill, _parts, \
        _face_width

    L = LABEL_INDEX
    obs = parser.observe(aligned)
    guess = parser.labels_from(aligned, obs)
    shape = guess.shape
    mesh = obs.mesh
    fw = _face_width(mesh)
    yy = np.mgrid[0:shape[0], 0:shape[1]][0]
    oval = _fill(shape, mesh[list(FACE_OVAL)])
    brow_y = float(mesh[list(BROW_IMAGE_LEFT + BROW_IMAGE_RIGHT), 1].min())
    nose_y = float(mesh[NOSE_TIP, 1])
    chin_y = float(mesh[CHIN, 1])
    p = obs.person

    out = guess.copy()
    said_hair = np.isin(guess, (L["hair"], L["hat"]))
    out[said_hair & ~hair] = IGNORE  # the heuristic's hair is not hair: what it is, only the rules below say
    out[said_hair & ~hair & oval] = L["skin"]
    # Dark clothes the heuristic took for hair: well below the chin, on the person, not in the mask.
    out[said_hair & ~hair & ~oval & (yy > chin_y + 0.15 * fw) & (p > 0.7)] = L["cloth"]
    # Above the brows, beside or over the face, a person pixel the mask does not call hair is a bald head
    # (skin-coloured) or head wear; where the selfie model is unsure, neither.
    # Other people's heads stay IGNORE: only what lies close to this face's outline counts.
    near = cv2.distanceTransform((~oval).astype(np.uint8), cv2.DIST_L2, 3) < 0.4 * fw
    top = ~hair & (yy < brow_y) & ~oval & np.isin(guess, (L["cloth"], L["neck"], L["hair"], L["hat"], L["skin"]))
    skinlike = _skin_distance(aligned, mesh, oval) < 3.0
    sure = top & near & (p > 0.85)
    out[sure] = np.where(skinlike[sure], L["skin"], L["hat"])
    out[top & ~sure] = IGNORE
    out[hair] = L["hair"]
    # Beard and moustache: the mask's hair on the face below the nose. Our labels call that skin; the mask
    # cannot tell beard from face there, so neither can we.
    out[hair & oval & (yy > nose_y - 0.02 * fw)] = IGNORE
    out[hair & ~oval & (yy > chin_y) & (yy < chin_y + 0.25 * fw)] = IGNORE
    # The mesh's parts stay theirs, except brows under a fringe, which the mask calls hair.
    for name, part in _parts(mesh, shape, fw).items():
        if name.endswith("brow"):
            out[part & ~hair] = L[name]
            out[part & hair] = IGNORE
        else:
            out[part] = L[name]
    backdrop = ~hair & (p < 0.3)
    out[backdrop] = L["background"]
    out[~hair & (p >= 0.3) & (p < 0.7) & (out == L["background"])] = IGNORE
    out[~hair & (p >= 0.3) & (p < 0.7) & np.isin(out, (L["cloth"], L["neck"]))] = IGNORE
    # The mesh's parts are exact to a pixel: no band between them. Elsewhere the boundaries are a heuristic's.
    coarse = np.where(np.isin(out, FACE_PARTS), L["skin"], np.where(out == IGNORE, 254, out)).astype(np.uint8)
    unsure = _band(coarse, BAND)
    unsure |= _edge(hair, COARSE_BAND) | _edge(p > 0.5, COARSE_BAND)
    out[unsure] = IGNORE
    return out


@dataclass
class LabelCache:
    """Pseudo-labels of a hair folder: `labels/NAME.png` per photo and `index.json` (matrix per photo)."""

    root: Path  # the photos' folder (images/ + hair/ or masks/)
    folder: Path  # the cache
    entries: dict[str, list[list[float]]]  # relative image path -> 2×3 matrix photo -> aligned 256²
    kind: str = "pseudo"

    @classmethod
    def open(cls, root: Path, folder: Path) -> "LabelCache":
        index = folder / "index.json"
        if not index.is_file():
            raise UsageError(f"{folder}: no pseudo-label cache (index.json); build one with the mediapipe models")
        data = json.loads(index.read_text())
        if data.get("version") != CACHE_VERSION:
            raise UsageError(f"{index}: pseudo-label cache version {data.get('version')}, expected "
                             f"{CACHE_VERSION}; rebuild it")
        return cls(root, folder, data["entries"], data.get("kind", "pseudo"))

    def label_path(self, rel: str) -> Path:
        return self.folder / "labels" / Path(rel).with_suffix(".png")


# The cache's crops are wider than the aligned crop, with the face at the same pixel size: the aligned 256²
# crop is their centre, and the rest is context (hair below the shoulders, the backdrop) for training windows
# at other scales and for parsing a photo in its own coordinates.
CONTEXT_SIZE = 368


def context_matrix(matrix: np.ndarray, size: int = SIZE, context_size: int = CONTEXT_SIZE) -> np.ndarray:
    """photo -> context-crop matrix, from photo -> aligned `size`² (the aligned crop centred in the context)."""
    m = np.asarray(matrix, np.float64).copy()
    m[:, 2] += (context_size - size) / 2
    return m


def cache_is_complete(root: Path, folder: Path, kind: str = "pseudo") -> bool:
    """True when `folder` holds a current cache of `kind` with every photo of `root` labelled or recorded as
    failed."""
    index = folder / "index.json"
    if not index.is_file():
        return False
    data = json.loads(index.read_text())
    if data.get("version") != CACHE_VERSION or data.get("kind", "pseudo") != kind:
        return False
    known = set(data.get("entries", {})) | set(data.get("failed", {}))
    return all(str(img.relative_to(root / "images")) in known for img, _ in _pairs(root, kind))


_WORKER: dict = {}


def _label_one(job: tuple[str, Path, Path]) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
    """(labels, photo -> context matrix, None) or (None, None, why not) for one photo of a cache of `kind`; in a
    worker process."""
    import cv2

    from ..errors import NoFaceError
    from ..io import read_image, read_mask

    kind, img_path, label_path = job
    if not _WORKER:
        from ..stages.align_mediapipe import MediapipeAligner
        from ..stages.parse_mesh import MeshParser

        cv2.setNumThreads(1)
        _WORKER.update(aligner=MediapipeAligner(), parser=MeshParser())
    try:
        photo = read_image(img_path)
        truth = read_hair(label_path) if kind == "pseudo" else read_mask(label_path)
        if truth.shape != photo.shape[:2]:
            raise InputError(label_path, f"mask is {truth.shape[1]}×{truth.shape[0]}, its photo "
                                         f"{photo.shape[1]}×{photo.shape[0]}")
        faces = _WORKER["aligner"].align(photo, size=SIZE)
        if not faces:
            raise NoFaceError("no face found")
        m = context_matrix(faces[0].alignment.matrix)
        n = CONTEXT_SIZE
        if kind == "pseudo":
            crop = cv2.warpAffine(photo, m, (n, n), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            warped = cv2.warpAffine(truth.astype(np.float32), m, (n, n), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0.5
            labels = pseudo_labels(crop, warped, _WORKER["parser"])
        else:
            labels = real_labels(truth, m, n)
        # What lies outside the photo was made up by the reflection: nobody labelled it.
        inside = cv2.warpAffine(np.ones(photo.shape[:2], np.uint8), m, (n, n), flags=cv2.INTER_NEAREST,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0
        labels[~inside] = IGNORE
        return labels, m, None
    except (InputError, NoFaceError) as exc:
        return None, None, str(exc)


def real_labels(mask: np.ndarray, matrix: np.ndarray, n: int) -> np.ndarray:
    """A hand-made CelebAMask-HQ mask (its order and sides) as canonical labels in the n² context crop of
    `matrix`: sides re-assigned by centroid, warped nearest."""
    import cv2

    from ..labels import assign_sides, from_format

    canonical = assign_sides(from_format(mask, "celebamask"))
    return cv2.warpAffine(canonical, matrix, (n, n), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=IGNORE)


def build_cache(root: Path, folder: Path, *, kind: str = "pseudo", workers: int = 1,
                progress: Callable[[int, int], None] | None = None,
                warn: Callable[[str], None] | None = None) -> LabelCache:
    """Label every photo of `root` into `folder` (pseudo-labels of a hair folder, or the aligned real masks of a
    celebamask folder; resumable: photos already labelled are kept), in `workers` processes. Photos where no
    face is found are reported through `warn` and left out."""
    import cv2

    from ..io import atomic_path, write_json

    pairs = _pairs(root, kind)
    index = folder / "index.json"
    old = json.loads(index.read_text()) if index.is_file() else {}
    same = old.get("version") == CACHE_VERSION and old.get("kind", "pseudo") == kind
    entries = old.get("entries", {}) if same else {}
    failed = dict(old.get("failed", {})) if same else {}
    rel = lambda p: str(p.relative_to(root / "images"))  # noqa: E731
    todo = [(kind, i, h) for i, h in pairs if rel(i) not in failed
            and not (rel(i) in entries and (folder / "labels" / Path(rel(i)).with_suffix(".png")).is_file())]
    done = len(pairs) - len(todo)
    if progress:
        progress(done, len(pairs))

    def save_index():
        write_json(index, {"version": CACHE_VERSION, "kind": kind, "size": SIZE, "context_size": CONTEXT_SIZE,
                           "entries": entries, "failed": failed})

    def results():
        if workers <= 1:
            yield from map(_label_one, todo)
            return
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            yield from pool.imap(_label_one, todo, chunksize=4)

    try:
        for (_, img_path, _), (labels, m, problem) in zip(todo, results()):
            name = rel(img_path)
            done += 1
            if problem is not None:
                failed[name] = problem
                if warn:
                    warn(f"{img_path}: {problem}")
            else:
                out = folder / "labels" / Path(name).with_suffix(".png")
                with atomic_path(out) as tmp:
                    cv2.imwrite(str(tmp), labels)
                entries[name] = m.round(6).tolist()
            if progress:
                progress(done, len(pairs))
            if done % 100 == 0:
                save_index()
    finally:
        save_index()
    return LabelCache(root, folder, entries, kind)


class CachedPhotos:
    """Training samples from a label cache: the photo warped into its context crop with the cached matrix, and
    the cached labels (IGNORE where unsure). `split` is "train" (people not held out), "heldout" or "all".
    `hair_only`: a hair folder's labels as hair, NOT_HAIR or IGNORE alone (the hand-made mask's partial label,
    without the pseudo-labels' other classes)."""

    def __init__(self, cache: LabelCache, split: str = "train", hair_only: bool = False):
        if split not in ("train", "heldout", "all"):
            raise UsageError(f"split must be train, heldout or all, not {split!r}")
        if hair_only and cache.kind != "pseudo":
            raise UsageError(f"{cache.root}: hair-only labels come from a hair folder, not a {cache.kind} one")
        self.cache, self.split, self.hair_only = cache, split, hair_only
        self.names = sorted(n for n in cache.entries if split == "all" or held_out(n) == (split == "heldout"))
        if not self.names:
            raise UsageError(f"{cache.root}: no labelled photo in the {split} split")

    def __len__(self) -> int:
        return len(self.names)

    def load(self, index: int):
        import cv2

        from ..io import read_image
        from ..data.sets import Sample

        rel = self.names[index]
        photo = read_image(self.cache.root / "images" / rel)
        m = np.asarray(self.cache.entries[rel], np.float64)
        n = CONTEXT_SIZE
        image = cv2.warpAffine(photo, m, (n, n), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        path = self.cache.label_path(rel)
        labels = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if labels is None or labels.shape != (n, n):
            raise InputError(path, "unreadable or wrong-sized label file (rebuild the cache)")
        if self.hair_only:
            hair = LABEL_INDEX["hair"]
            labels = np.where(labels == hair, hair, np.where(labels == IGNORE, IGNORE, NOT_HAIR)).astype(np.uint8)
        return Sample(image, labels, str(self.cache.root / "images" / rel), context=n / SIZE)

    def describe(self) -> str:
        if self.cache.kind == "celebamask":
            what = "hand-made masks of every class (CelebAMask-HQ order, sides re-assigned), aligned"
            return f"{len(self)} photos ({self.split} split) from {self.cache.root}, {what}, in {self.cache.folder}"
        people = len({person_of(n) for n in self.names})
        labels = "hair vs not hair from the hand-made masks" if self.hair_only else "pseudo-labels"
        return (f"{len(self)} photos of {people} people ({self.split} split) from {self.cache.root}, "
                f"{labels} in {self.cache.folder}")
