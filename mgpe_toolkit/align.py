"""The align stage's shared geometry: the five-point template, similarity fitting, warping, paste-back."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .types import AlignedFace, Alignment, Outcome

# DESIGN.md §2: left eye, right eye, nose tip, left mouth corner, right mouth corner, for a 256² crop.
TEMPLATE_256 = np.array([
    (96.49, 119.97), (159.45, 120.10), (128.32, 157.01), (100.63, 185.71), (156.54, 185.58),
], dtype=np.float64)


def template(size: int = 256) -> np.ndarray:
    """(5, 2) template landmarks for a size × size crop."""
    return TEMPLATE_256 * (size / 256.0)


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src (N, 2) onto dst (N, 2).

    Umeyama's closed form, reflection excluded. Returns the (2, 3) matrix. Needs N >= 2 distinct points.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ValueError(f"need two matching (N>=2, 2) point sets, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var_s = (s ** 2).sum() / len(src)
    if var_s < 1e-12:
        raise ValueError("landmarks coincide: cannot fit a similarity")
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    fix = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        fix[1, 1] = -1
    rot = u @ fix @ vt
    scale = np.trace(np.diag(sig) @ fix) / var_s
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) matrix to points (N, 2)."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]


def align_from_landmarks(image: np.ndarray, landmarks: np.ndarray, size: int = 256, *, score: float = 1.0,
                         aligner: str = "", source_path: str | None = None,
                         points: tuple[int, ...] = (0, 1, 2, 3, 4)) -> AlignedFace:
    """Warp a photo (H, W, 3) so that its five landmarks (5, 2) land on the template.

    `points` picks which of the five are trusted for the fit (e.g. eyes only for a detector without a mesh).
    """
    idx = list(points)
    matrix = fit_similarity(np.asarray(landmarks)[idx], template(size)[idx])
    h, w = image.shape[:2]
    crop = warp_crop(image, matrix, size)
    alignment = Alignment(matrix=matrix, size=size, landmarks=np.asarray(landmarks, dtype=np.float64),
                          score=score, source_path=source_path, source_size=(w, h), aligner=aligner)
    return AlignedFace(image=crop, alignment=alignment)


def native_size(alignment: Alignment, cap: int) -> int:
    """The crop side at which one crop pixel is (at least) one photo pixel, a multiple of 32 from 256 to `cap`:
    the working size of an edit that keeps the detail the photo has."""
    per_photo_px = float(np.sqrt(abs(np.linalg.det(np.asarray(alignment.matrix)[:, :2]))))  # crop px / photo px
    side = alignment.size / max(per_photo_px, 1e-9)
    return int(min(max(cap, 256), max(256, 32 * int(np.ceil(side / 32 - 1e-6)))))


def resized(face: AlignedFace, image: np.ndarray, size: int) -> AlignedFace:
    """The same alignment at another crop size (the template scales with the crop), cut again from the photo."""
    if size == face.alignment.size:
        return face
    a = face.alignment
    matrix = np.asarray(a.matrix, np.float64) * (size / a.size)
    alignment = Alignment(matrix=matrix, size=size, landmarks=a.landmarks, score=a.score, source_path=a.source_path,
                          source_size=a.source_size, aligner=a.aligner)
    return AlignedFace(image=warp_crop(image, matrix, size), alignment=alignment)


def zoomed(matrix: np.ndarray, size: int, scale: float) -> np.ndarray:
    """A photo -> crop matrix whose crop shows the face `scale` × as large about the crop's centre (scale < 1:
    more of the photo around the aligned face)."""
    c = size / 2.0
    zoom = np.array([[scale, 0.0, c * (1 - scale)], [0.0, scale, c * (1 - scale)], [0.0, 0.0, 1.0]])
    return (zoom @ np.vstack([np.asarray(matrix, np.float64), [0.0, 0.0, 1.0]]))[:2]


def warp_crop(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The size² crop of a photo under a photo -> crop matrix (area-averaged when shrinking a lot)."""
    import cv2

    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    flags = cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR
    return cv2.warpAffine(image, matrix, (size, size), flags=flags, borderMode=cv2.BORDER_REFLECT101)


def check_layout(source: Path, out_dir: Path) -> None:
    """Refuse an output folder that would overwrite or mix with the inputs: the input folder itself, a folder
    inside it (a later run would read the outputs as photos) or one holding it; for one photo, an output
    folder where its own PNG name would replace it."""
    from .errors import UsageError

    src, out = source.resolve(), out_dir.resolve()
    if source.is_file():
        if (out / (source.stem + ".png")) == src:
            raise UsageError(f"{out_dir}: the output {source.stem}.png would replace the input {source}; "
                             "choose another output folder")
        return
    if out == src:
        raise UsageError(f"{out_dir}: the output folder is the input folder; its photos would be replaced")
    if src in out.parents:
        raise UsageError(f"{out_dir}: the output folder is inside the input folder {source}; choose one outside it")
    if out in src.parents:
        raise UsageError(f"{out_dir}: the output folder holds the input folder {source}; choose another")


def plan_jobs(source: str | os.PathLike, out_dir: str | os.PathLike,
              aux: tuple[str, ...] = ()) -> list[tuple[Path, Path]]:
    """(photo, output stem) pairs: one file, or every image under a folder with its relative layout kept.
    Photos whose names differ only in the extension (`face.jpg`, `face.png`) keep it in their stems
    (`face_jpg`, `face_png`), so no output stands for two photos; so does a photo whose stem is another's plus
    one of the `aux` suffixes that job writes beside its output (`a.preview.jpg` beside `a.png` with `.preview`).
    Refuses layouts that lose photos."""
    from collections import Counter

    from .errors import UsageError
    from .io import list_images

    source, out_dir = Path(source), Path(out_dir)
    if not source.exists():
        raise UsageError(f"{source}: no such file or folder")
    check_layout(source, out_dir)
    if source.is_file():
        return [(source, out_dir / source.stem)]
    if not source.is_dir():
        raise UsageError(f"{source}: not a file or folder")
    photos = list_images(source)
    rel = [p.relative_to(source).with_suffix("") for p in photos]
    keys = [r.as_posix().lower() for r in rel]
    taken = Counter(keys)
    beside = {k + a.lower() for k in keys for a in aux}
    return [(p, out_dir / (r.with_name(f"{r.name}_{p.suffix[1:].lower()}") if taken[k] > 1 or k in beside else r))
            for p, r, k in zip(photos, rel, keys)]


def align_one(aligner, photo: Path, stem: Path, *, size: int = 256, all_faces: bool = False,
              overwrite: bool = False) -> Outcome:
    """Align one photo to `stem`.png + `stem`.json (or `stem`_0.png, ... with all_faces), atomically."""
    from .errors import InputError
    from .io import read_image, write_image, write_json

    first = stem.with_name(stem.name + ("_0" if all_faces else "") + ".png")
    if not overwrite and first.exists() and first.with_suffix(".json").exists():
        return Outcome(photo, "skipped", [first])
    try:
        image = read_image(photo)
    except InputError as exc:
        return Outcome(photo, "unreadable", error=exc.problem)
    try:
        faces = aligner.align(image, size=size, all_faces=all_faces)
    except Exception as exc:  # one bad photo (or a plugin's bug) must not end a run over thousands
        return Outcome(photo, "failed", error=f"aligner failed: {type(exc).__name__}: {exc}")
    if not faces:
        return Outcome(photo, "no-face", error="no face found")
    outputs = []
    for i, face in enumerate(faces if all_faces else faces[:1]):
        out = stem.with_name(f"{stem.name}_{i}.png" if all_faces else f"{stem.name}.png")  # stems may hold dots
        face.alignment.source_path = str(photo.resolve())
        # The sidecar goes first: an image without its sidecar is redone on resume, never trusted.
        write_json(out.with_suffix(".json"), face.alignment.to_json())
        write_image(out, face.image)
        outputs.append(out)
    return Outcome(photo, "done", outputs)


def paste_back(photo: np.ndarray, aligned: np.ndarray, alignment: Alignment, region: np.ndarray, *,
               feather: float = 0.03) -> np.ndarray:
    """Warp an aligned result (S, S, 3) back into its photo (H, W, 3) inside `region` (S, S) bool.

    The blend weight is the region warped back and feathered inward by `feather` × face size, so pixels
    outside the region stay byte-identical to the photo.
    """
    import cv2

    h, w = photo.shape[:2]
    size = aligned.shape[0]
    inverse = alignment.inverse()
    weight = cv2.warpAffine(region.astype(np.float32), inverse, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    inside = weight > 0.5
    if not inside.any():
        return photo.copy()
    radius = max(1.0, feather * size / float(np.sqrt(abs(np.linalg.det(alignment.matrix[:, :2])))))
    # Distance to the region's edge, ramped over `radius` photo pixels: 0 outside, 1 well inside.
    dist = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 5)
    return _blend(photo, aligned, inverse, np.clip(dist / radius, 0.0, 1.0))


def paste_weighted(photo: np.ndarray, aligned: np.ndarray, alignment: Alignment, weight: np.ndarray) -> np.ndarray:
    """Warp an aligned result back into its photo with a blend weight given in the aligned crop (S, S) float in
    [0, 1] (see `pipeline.local_weight`): photo pixels where the warped weight is 0 stay byte-identical."""
    import cv2

    h, w = photo.shape[:2]
    inverse = alignment.inverse()
    alpha = cv2.warpAffine(weight.astype(np.float32), inverse, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    return _blend(photo, aligned, inverse, np.clip(alpha, 0.0, 1.0), cv2.INTER_CUBIC)


def _blend(photo: np.ndarray, aligned: np.ndarray, inverse: np.ndarray, alpha: np.ndarray,
           interpolation: int | None = None) -> np.ndarray:
    """photo·(1 - alpha) + the warped result·alpha, computed only where alpha > 0 (the rest is the photo's bytes)."""
    import cv2

    out = photo.copy()
    inside = alpha > 0
    if not inside.any():
        return out
    ys, xs = np.nonzero(inside)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    shift = np.array([[1, 0, -x0], [0, 1, -y0]], np.float64)
    box = np.vstack([shift, [0, 0, 1]]) @ np.vstack([inverse, [0, 0, 1]])
    back = cv2.warpAffine(aligned, box[:2], (int(x1 - x0), int(y1 - y0)),
                          flags=cv2.INTER_LINEAR if interpolation is None else interpolation,
                          borderMode=cv2.BORDER_REPLICATE)
    a = alpha[y0:y1, x0:x1, None]
    part = photo[y0:y1, x0:x1].astype(np.float32) * (1 - a) + back.astype(np.float32) * a
    mixed = np.clip(part + 0.5, 0, 255).astype(np.uint8)
    keep = inside[y0:y1, x0:x1]
    out[y0:y1, x0:x1][keep] = mixed[keep]
    return out
