"""Regenerates the pictures in docs/ from photos that ship inside installed packages.

Usage: python docs/make_pictures.py [--out docs] [--helen ../shared/data/helen-samples [--helen-out FILE]]
Writes demo-grid.png (the grid of `mgpe demo`), edit.png, swap.png, transfer.png and synth.png (labelled
before/after sheets, classical stages), and prints the synth masks' agreement with the target mask
(per-pixel accuracy over face and hair, judged by the default parser and by `mesh`). With --helen, a
second grid of the same edits on the Helen samples goes to --helen-out (default runs/helen-edits.png, outside
the repository's tracked files: that data is not ours to publish).
"""
from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    import matplotlib.cbook

    import skimage.data

    from mgpe_toolkit import Pipeline
    from mgpe_toolkit.grid import labelled_grid
    from mgpe_toolkit.io import read_image, write_image
    from mgpe_toolkit.labels import colorize, face_hair_region

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--helen", type=Path, help="helen-samples folder: also write the Helen grid")
    ap.add_argument("--helen-out", type=Path, default=Path("runs/helen-edits.png"))
    args = ap.parse_args()
    pipe = Pipeline()
    import shutil
    import tempfile

    from mgpe_toolkit.demo import run_demo

    with tempfile.TemporaryDirectory() as tmp:
        report = run_demo(tmp, log=lambda m: None, pipe=pipe)
        shutil.copyfile(report.files["grid"], args.out / "demo-grid.png")
    astro = pipe.prepare(skimage.data.astronaut())
    grace = pipe.prepare(read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))

    ops = [["hair->skin@forehead"], ["grow:eyes:2", "scale:mouth:1.2"], ["hair->background"]]
    rows = [[("astronaut", astro.image), ("mask", colorize(astro.mask.labels))]]
    for op in ops:
        r = pipe.edit(astro, op)
        rows[0].append((" ".join(op), r.aligned))
    write_image(args.out / "edit.png", labelled_grid(rows))

    ab, ba = pipe.swap(astro, grace), pipe.swap(grace, astro)
    write_image(args.out / "swap.png", labelled_grid([[
        ("a: astronaut", astro.image), ("b: grace_hopper", grace.image), ("swap+ a -> b", ab.pasted),
        ("swap+ b -> a", ba.pasted)]]))
    t1, t2 = pipe.transfer(astro, grace, ["hair"]), pipe.transfer(grace, astro, ["hair", "mouth"])
    write_image(args.out / "transfer.png", labelled_grid([[
        ("grace", grace.image), ("hair from astronaut", t1.aligned), ("astronaut", astro.image),
        ("hair+lips from grace", t2.aligned)]]))

    target = astro.mask.labels
    results = pipe.synth(target, [astro, grace])
    cells = [("target mask", colorize(target))]
    judges = {pipe.implementation_name("parse"): pipe, "mesh": Pipeline(parse="mesh")}
    for name, r in zip(("astronaut", "grace_hopper"), results):
        for judge, jp in judges.items():
            parsed = jp.parse(r.aligned).labels
            region = face_hair_region(target) | face_hair_region(parsed)
            acc = float((parsed == target)[region].mean())
            print(f"synth from {name}: {judge}-parsed mask agrees with the target on {acc:.3f} of face+hair pixels")
        cells.append((f"from {name} ({acc:.2f} mesh)", r.aligned))
    write_image(args.out / "synth.png", labelled_grid([cells]))
    names = ("demo-grid.png", "edit.png", "swap.png", "transfer.png", "synth.png")
    from PIL import Image

    for name in names:  # 256-colour palettes keep the committed pictures small
        Image.open(args.out / name).convert("RGB").quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(
            args.out / name, optimize=True)
    print(f"wrote {', '.join(str(args.out / n) for n in names)}")
    if args.helen is not None:
        helen_grid(pipe, args.helen, args.helen_out)


def helen_grid(pipe, folder: Path, out: Path) -> None:
    """Rows per Helen sample: photo, hair->skin, hair->background, grow:eyes:2, swap+ from the next sample, and
    the same swap onto the sample made grey."""
    import cv2
    import numpy as np

    from mgpe_toolkit.grid import labelled_grid
    from mgpe_toolkit.io import read_image, write_image

    faces = [(p.stem, pipe.prepare(cv2.resize(read_image(p), (256, 256), interpolation=cv2.INTER_AREA), aligned=True))
             for p in sorted((folder / "images").glob("*.png"))]
    rows = []
    for i, (name, face) in enumerate(faces):
        other_name, other = faces[(i + 1) % len(faces)]
        grey = np.repeat(cv2.cvtColor(face.image, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
        grey_face = pipe.prepare(grey, aligned=True, mask=face.mask.labels)
        rows.append([(name, face.image), ("hair->skin", pipe.edit(face, ["hair->skin"]).aligned),
                     ("hair->background", pipe.edit(face, ["hair->background"]).aligned),
                     ("grow:eyes:2", pipe.edit(face, ["grow:eyes:2"]).aligned),
                     (f"swap+ from {other_name}", pipe.swap(other, face).aligned),
                     ("onto it in grey", pipe.swap(other, grey_face).aligned)])
    write_image(out, labelled_grid(rows))
    print(f"wrote {out} ({len(rows)} Helen samples)")


if __name__ == "__main__":
    main()
