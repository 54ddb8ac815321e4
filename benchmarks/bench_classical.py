"""The zero-weight (classical) edits, before and after a change of the fuser, by two measures per edit type:

* mask accuracy (the paper's Table 2 measure): parse the result with the default parser and compare it with the
  target mask over the face and hair pixels of either;
* seam score: the mean gradient magnitude of the result along the border of the region the edit changed,
  divided by the mean gradient magnitude of the input face (its own edges); lower is less visible.

    python benchmarks/bench_classical.py [../shared/data/helen-samples]

Faces: skimage's astronaut and matplotlib's grace_hopper, and the aligned Helen samples when their folder is
given. Variants: before issue 17 (the fuser's `harmonise` and the generator's `shade` off) and now (on).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

EDITS = ("hair->skin", "hair->background", "grow:eyes:2", "swap+", "transfer mouth", "transfer hair")


def faces(helen: Path | None):
    import matplotlib.cbook
    import skimage.data

    from mgpe_toolkit.io import read_image

    out = [("astronaut", skimage.data.astronaut(), False),
           ("grace_hopper", read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), False)]
    if helen is not None:
        out += [(p.stem, read_image(p), True) for p in sorted((helen / "images").glob("*.png"))]
    return out


def seam_score(result: np.ndarray, before: np.ndarray) -> float:
    import cv2

    changed = (np.abs(result.astype(int) - before.astype(int)).max(-1) > 3).astype(np.uint8)
    if changed.sum() < 50:
        return float("nan")
    k = np.ones((3, 3), np.uint8)
    border = (cv2.dilate(changed, k) - cv2.erode(changed, k)).astype(bool)

    def grad(img):
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))

    return float(grad(result)[border].mean() / max(grad(before).mean(), 1e-6))


def run(harmonise: bool, data) -> dict[str, tuple[list[float], list[float]]]:
    from mgpe_toolkit import Pipeline
    from mgpe_toolkit.errors import MgpeError
    from mgpe_toolkit.labels import face_hair_region

    pipe = Pipeline(options={"fuse": {"harmonise": harmonise}, "generate": {"shade": harmonise}})
    judge = Pipeline()
    prepared = [(name, pipe.prepare(img, aligned=aligned)) for name, img, aligned in data]
    scores = {e: ([], []) for e in EDITS}
    for i, (name, face) in enumerate(prepared):
        other = prepared[(i + 1) % len(prepared)][1]
        for edit in EDITS:
            try:
                if edit == "swap+":
                    result = pipe.swap(other, face)
                elif edit.startswith("transfer"):
                    result = pipe.transfer(other, face, [edit.split()[1]])
                else:
                    result = pipe.edit(face, [edit])
            except MgpeError:  # e.g. a source without hair for `transfer hair`
                continue
            target = result.mask.labels
            parsed = judge.parse(result.aligned).labels
            region = face_hair_region(target) | face_hair_region(parsed)
            scores[edit][0].append(float((parsed[region] == target[region]).mean()))
            scores[edit][1].append(seam_score(result.aligned, face.image))
    return scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("helen", nargs="?", type=Path, help="helen-samples folder (images/ + labels/), optional")
    args = ap.parse_args()
    data = faces(args.helen if args.helen and (args.helen / "images").is_dir() else None)
    before, after = run(False, data), run(True, data)
    print(f"{len(data)} faces; mask accuracy (higher is better) and seam score (lower is better), mean over faces")
    print(f"{'edit':18s} {'accuracy before':>16s} {'after':>7s} {'seam before':>12s} {'after':>7s}")
    for edit in EDITS:
        (a0, s0), (a1, s1) = before[edit], after[edit]
        print(f"{edit:18s} {np.mean(a0):16.3f} {np.mean(a1):7.3f} {np.nanmean(s0):12.3f} {np.nanmean(s1):7.3f}"
              f"   ({len(a1)} faces)")


if __name__ == "__main__":
    main()
