"""Edits of sharp high-resolution portraits: does the face keep its detail where the edit did not touch it?

For each photo of a folder (default ../shared/data/celebahq-1024, 1024² CelebA-HQ portraits) and each op, prints
the face box's sharpness after the edit as a share of before (variance of the Laplacian, grey), the share of the
face box's pixels within 1 grey level of the photo, and the seconds `Pipeline.edit` took (align + parse + edit +
paste back). The face box is the bounding box of eyes, brows, nose and mouth of the photo's parsed mask, warped
into the photo. The op `swap+` puts the next photo's face onto each photo; its sharpness is the result's face box
over the source's face box resized to the same box (size-corrected), its seconds both prepares and the swap.
--size: the working size (native, the default of the CLI, or a side in pixels; code without it works at 256). With --against REF, the same figures of commit REF's code (a temporary git worktree, run in a
subprocess) are printed beside them.

    python benchmarks/bench_highres.py [FOLDER] [--ops 'grow:eyes:1' 'hair->background' swap+] [--against REF]
                                       [--size native|N]

--big W H: the photos are first scaled (cubic) to H high and padded (edge) to W wide, a 24-megapixel camera's frame
by default (6000 4000), to time edits at that size.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "celebahq-1024"
BOX_LABELS = ("l_eye", "r_eye", "l_brow", "r_brow", "nose", "mouth", "u_lip", "l_lip")


def sharpness(img: np.ndarray) -> float:
    import cv2

    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def face_box(face, photo_shape) -> tuple[int, int, int, int]:
    from mgpe_toolkit.labels import LABEL_INDEX

    ys, xs = np.nonzero(np.isin(face.mask.labels, [LABEL_INDEX[n] for n in BOX_LABELS]))
    corners = np.array([[xs.min(), ys.min()], [xs.max(), ys.min()], [xs.min(), ys.max()], [xs.max(), ys.max()]], float)
    inv = face.alignment.inverse()
    pts = corners @ inv[:, :2].T + inv[:, 2]
    h, w = photo_shape[:2]
    x0, y0 = np.clip(pts.min(0).astype(int), 0, [w, h])
    x1, y1 = np.clip(np.ceil(pts.max(0)).astype(int), 0, [w, h])
    return int(x0), int(y0), int(x1), int(y1)


def as_big(photo: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    import cv2

    if not size:
        return photo
    w, h = size
    scaled = cv2.resize(photo, (h * photo.shape[1] // photo.shape[0], h), interpolation=cv2.INTER_CUBIC)
    pad = max(0, w - scaled.shape[1])
    return np.pad(scaled, ((0, 0), (pad // 2, pad - pad // 2), (0, 0)), mode="edge")


def measure(folder: Path, ops: list[str], limit: int, big: tuple[int, int] | None = None,
            size: str = "native") -> dict:
    import cv2

    from mgpe_toolkit import Pipeline
    from mgpe_toolkit.io import list_images, read_image

    pipe = Pipeline()

    def prepare(photo):
        try:
            return pipe.prepare(photo, size=size if size == "native" else int(size))
        except TypeError:  # code from before working sizes: 256
            return pipe.prepare(photo)

    out: dict[str, dict[str, list[float]]] = {op: {"sharpness": [], "within_1": [], "seconds": []} for op in ops}
    photos = list_images(folder)[:limit]
    pipe.prepare(read_image(photos[0]))  # warm up: graphs and models load once
    for i, path in enumerate(photos):
        photo = as_big(read_image(path), big)
        for op in ops:
            start = time.perf_counter()
            if op == "swap+":
                source = as_big(read_image(photos[(i + 1) % len(photos)]), big)
                src = prepare(source)
                face = prepare(photo)
                result = pipe.swap(src, face)
            else:
                face = prepare(photo)
                result = pipe.edit(face, [op])
            took = time.perf_counter() - start
            x0, y0, x1, y1 = face_box(face, photo.shape)
            before, after = photo[y0:y1, x0:x1], result.pasted[y0:y1, x0:x1]
            if op == "swap+":
                sx0, sy0, sx1, sy1 = face_box(src, source.shape)
                before = cv2.resize(source[sy0:sy1, sx0:sx1], (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
            grey = lambda a: a.astype(np.float32).mean(-1)  # noqa: E731
            out[op]["sharpness"].append(sharpness(after) / max(sharpness(before), 1e-9))
            out[op]["within_1"].append(float((np.abs(grey(after) - grey(before)) <= 1).mean()))
            out[op]["seconds"].append(took)
    return {"photos": len(photos), "ops": out}


def measure_at(ref: str, folder: Path, ops: list[str], limit: int, big: tuple[int, int] | None = None,
               size: str = "native") -> dict:
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", "--quiet", str(tree), ref], check=True)
        try:
            env = dict(os.environ, PYTHONPATH=str(tree), MGPE_MODELS=str(root / "models"))
            subprocess.run([sys.executable, str(root / "benchmarks" / "bench_highres.py"), str(folder.resolve()),
                            "--ops", *ops, "--limit", str(limit), "--json", str(Path(tmp) / "r.json"), "--size", size,
                            *(["--big", *map(str, big)] if big else [])],
                           check=True, cwd=tree, env=env)
            return json.loads((Path(tmp) / "r.json").read_text())
        finally:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tree)], check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--ops", nargs="+", default=["grow:eyes:1", "hair->background"])
    ap.add_argument("--limit", type=int, default=12, help="at most this many photos")
    ap.add_argument("--against", help="a commit whose code is measured beside this tree's")
    ap.add_argument("--big", nargs=2, type=int, metavar=("W", "H"), help="scale and pad each photo to W×H first")
    ap.add_argument("--size", default="native", help="working size: native or a side in pixels")
    ap.add_argument("--json", type=Path, help=argparse.SUPPRESS)  # measure_at's subprocess
    args = ap.parse_args()
    if not args.folder.is_dir():
        sys.exit(f"{args.folder}: no such folder (give a folder of sharp portraits)")
    big = tuple(args.big) if args.big else None
    now = measure(args.folder, args.ops, args.limit, big, args.size)
    if args.json:
        args.json.write_text(json.dumps(now))
        return
    old = measure_at(args.against, args.folder, args.ops, args.limit, big, args.size) if args.against else None
    print(f"{now['photos']} photos of {args.folder}{f' at {big[0]}×{big[1]}' if big else ''}; face box = eyes, brows, nose, mouth; mean over photos"
          + f"; working size {args.size}" + (f"; before: {args.against}, after: this tree" if old else ""))
    print(f"{'op':<20}{'sharpness kept':>16}{'within 1 grey':>16}{'seconds':>10}")
    for op in args.ops:
        def row(r):
            m = {k: float(np.mean(v)) for k, v in r["ops"][op].items()}
            return f"{m['sharpness']:16.3f}{m['within_1']:16.3f}{m['seconds']:10.2f}"
        if old:
            print(f"{op + ' (before)':<20}" + row(old))
        print(f"{op:<20}" + row(now))


if __name__ == "__main__":
    main()
