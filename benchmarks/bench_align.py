"""Prints faces/s of an aligner on the astronaut photo scaled to several sizes, and the peak RSS.

Usage: python benchmarks/bench_align.py [--aligner mediapipe] [--sizes 512 2000 4000] [--runs 10]
The photo is padded to 4:3 for sizes >= 2000, so 4000 means a 4000×3000 photo.
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def photo(side: int) -> np.ndarray:
    import cv2
    import skimage.data

    img = skimage.data.astronaut()
    if side <= 1024:
        return cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA if side < 512 else cv2.INTER_CUBIC)
    h = side * 3 // 4
    face = cv2.resize(img, (h, h), interpolation=cv2.INTER_CUBIC)
    return cv2.copyMakeBorder(face, 0, 0, (side - h) // 2, side - h - (side - h) // 2, cv2.BORDER_REFLECT)


def main() -> None:
    from mgpe_toolkit import Pipeline

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--aligner", default=None)
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 2000, 4000])
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    pipe = Pipeline(align=args.aligner)
    print(f"aligner: {pipe.implementation_name('align')}")
    pipe.align(photo(512))  # load models outside the timing
    for side in args.sizes:
        img = photo(side)
        t = time.perf_counter()
        found = sum(len(pipe.align(img)) for _ in range(args.runs))
        dt = time.perf_counter() - t
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{img.shape[1]}×{img.shape[0]}: {found / dt:6.1f} faces/s ({found}/{args.runs} found), "
              f"peak RSS so far {rss:.0f} MiB")


if __name__ == "__main__":
    main()
