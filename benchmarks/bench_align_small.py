"""Prints faces found and median ms per photo of the default aligner, default path and --all-faces, on the
astronaut (512², one face) and the 3×3 group photos of tests/test_small_faces.py (900², eyes 24-40 and 40-60 px
apart).

Usage: python benchmarks/bench_align_small.py [--helen ../shared/data/helen-samples] [--runs 10]
(MGPE_HELEN_SAMPLES names the Helen folder as for the tests.)
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    import skimage.data

    from mgpe_toolkit import Pipeline

    sys.path.insert(0, str(ROOT / "tests"))
    from test_small_faces import MEDIUM, SMALL, group_photo

    ap = argparse.ArgumentParser(description=__doc__)
    helen = os.environ.get("MGPE_HELEN_SAMPLES", ROOT / ".." / "shared" / "data" / "helen-samples")
    ap.add_argument("--helen", type=Path, default=Path(helen))
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    photos = {"astronaut 512²": skimage.data.astronaut()}
    if (args.helen / "labels").is_dir():
        for eyes in (SMALL, MEDIUM):
            photos[f"group 900², eyes {eyes[0]:.0f}-{eyes[1]:.0f} px"] = group_photo(args.helen, eyes)[0]
    else:
        print(f"no Helen samples at {args.helen}: astronaut only")
    pipe = Pipeline()
    print(f"aligner: {pipe.implementation_name('align')}, {args.runs} runs each")
    pipe.align(photos["astronaut 512²"])  # load the models outside the timing
    for name, photo in photos.items():
        for all_faces in (False, True):
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                found = len(pipe.align(photo, all_faces=all_faces))
                times.append(time.perf_counter() - t)
            ms = float(np.median(times)) * 1000
            print(f"{name:28s} {'--all-faces' if all_faces else 'default':11s}: {found} faces, median {ms:6.1f} ms")


if __name__ == "__main__":
    main()
