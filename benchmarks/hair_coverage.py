"""How much of a photo's hair the parser's view holds: the aligned crop vs the wider view `mgpe parse` uses.

Usage: python benchmarks/hair_coverage.py ../shared/data/lfw-hair [--limit N]
For every photo with a hand-made hair mask (images/ + hair/), the share of its hair pixels inside the aligned
256² crop and inside the crop that shows the face at `parse.CONTEXT` of its aligned size.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    import cv2
    import numpy as np
    from rich.progress import track

    from mgpe_toolkit import Pipeline
    from mgpe_toolkit.align import zoomed
    from mgpe_toolkit.io import read_image
    from mgpe_toolkit.parse import CONTEXT
    from mgpe_toolkit.train.pseudo import hair_pairs, read_hair

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--limit", type=int)
    args = ap.parse_args()
    pipe = Pipeline()
    shares: dict[float, list[float]] = {1.0: [], CONTEXT: []}
    for img, hair_path in track(hair_pairs(args.folder)[:args.limit], description="photos"):
        hair = read_hair(hair_path)
        faces = pipe.align(read_image(img))
        if not hair.any() or not faces:
            continue
        for scale, out in shares.items():
            inverse = np.linalg.inv(np.vstack([zoomed(faces[0].alignment.matrix, 256, scale), [0, 0, 1]]))[:2]
            inside = cv2.warpAffine(np.ones((256, 256), np.uint8), inverse, (hair.shape[1], hair.shape[0]),
                                    flags=cv2.INTER_NEAREST) > 0
            out.append(float((hair & inside).sum() / hair.sum()))
    for scale, out in shares.items():
        v = np.array(out)
        print(f"face at {scale:.2f} of its aligned size: {len(v)} photos with hair; the crop holds {v.mean():.1%} of "
              f"their hair pixels on average, at least {np.percentile(v, 5):.1%} for 19 photos in 20")


if __name__ == "__main__":
    main()
