"""Learned vs classical swap+ on held-out CelebAMask-HQ portraits (issue 39): what the learned generator's model
card reports.

Usage: python benchmarks/eval_generator.py ../shared/data/celebamask-mini [--weights W] [--pairs 80]
                                            [--cache runs/caches] [--json F] [--write-card]

The held-out split of celebamask-mini (the people `mgpe train pack` and `mgpe train parser` leave out), aligned
with our aligner and its hand-made masks warped along (the label cache `mgpe train pack` builds, reused), is cut in
two: targets (even positions) and references (odd). Each target gets the face of one reference person by swap+,
with the hand-made masks of both (the generator is judged, not the parser). Figures per method (classical: the
zero-weight stages; learned: --weights, else the generator on $MGPE_MODELS, else real-face weights in models/):
- FID of the swaps against the references (the packaged TF-Inception), beside its floor: the real target faces
  against the same references, at the same counts (FID of so few images is biased upward; compare with the floor);
- mask accuracy: the default parser on each result against the target's hand-made mask (pixels, pooled), beside
  the same on the real targets (the parser's own disagreement with the hand-made masks: the ceiling);
- reconstruction (x_s = x_t: each target swapped with itself): PSNR and SSIM against the target (the classical
  stages give the face back unchanged: inf dB).
--write-card stores the learned figures in the weights' JSON card under "held_out".
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def held_out_faces(folder: Path, cache_root: Path) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(aligned 256² image, canonical labels, name) of every held-out portrait, through the label cache."""
    import os

    from mgpe_toolkit.data.pack import aligned_centre
    from mgpe_toolkit.train.pseudo import SIZE, CachedPhotos, LabelCache, build_cache, cache_is_complete

    cache = cache_root / (folder.resolve().name + ".celebamask")
    if not cache_is_complete(folder, cache, "celebamask"):
        print(f"aligning {folder} into {cache} (once)")
        build_cache(folder, cache, kind="celebamask", workers=max(1, min(8, os.cpu_count() or 1)))
    photos = CachedPhotos(LabelCache.open(folder, cache), "heldout")
    faces = []
    for i in range(len(photos)):
        s = photos.load(i)
        faces.append((*aligned_centre(s.image, s.mask, SIZE), Path(s.name).stem))
    return faces


def held_out_pairs(folder: Path, cache_root: Path, pairs: int):
    """The held-out split as (targets, sources, references, portraits): targets at even positions (at most `pairs`),
    references at odd ones, the reference person whose face each target gets, and the split's size."""
    faces = held_out_faces(folder, cache_root)
    targets, references = faces[0::2][:pairs], faces[1::2]
    return targets, [references[i % len(references)] for i in range(len(targets))], references, len(faces)


def mask_agreement(parser, images, targets) -> float:
    """The share of pixels where the parser's labels of `images` are those of the targets' hand-made masks."""
    agree = sum(int((parser.parse(image).labels == t[1]).sum()) for image, t in zip(images, targets))
    return agree / (len(targets) * targets[0][1].size)


def default_weights() -> Path | None:
    """The learned generator on the search path ($MGPE_MODELS), else real-face weights shipped under models/."""
    from mgpe_toolkit.weights import DEMO, GAN_WEIGHTS, REPO_MODELS, find_weights

    found = find_weights(GAN_WEIGHTS)
    shipped = sorted(p for p in REPO_MODELS.glob(f"*/{GAN_WEIGHTS}") if p.parent.name != DEMO)
    return found or (shipped[0] if shipped else None)


def evaluate(pipe, targets, sources, references, parser, features) -> dict:
    from mgpe_toolkit.metrics.fid import frechet_distance, statistics
    from mgpe_toolkit.metrics.reconstruction import psnr, ssim
    from mgpe_toolkit.types import FaceMask, PreparedFace

    def prepared(image, labels):
        return PreparedFace(image=image, mask=FaceMask(labels))

    swaps, psnrs, ssims = [], [], []
    start = time.perf_counter()
    for (t_img, t_lab, _), (s_img, s_lab, _) in zip(targets, sources):
        result = pipe.swap(prepared(s_img, s_lab), prepared(t_img, t_lab)).aligned
        swaps.append(result)
        same = pipe.swap(prepared(t_img, t_lab), prepared(t_img, t_lab)).aligned
        psnrs.append(psnr(same, t_img))
        ssims.append(ssim(same, t_img))
    seconds = (time.perf_counter() - start) / max(len(targets), 1)
    fid = frechet_distance(*statistics(features(swaps)), *references)
    return {"fid": round(fid, 2), "mask_accuracy": round(mask_agreement(parser, swaps, targets), 4), "psnr": round(float(np.mean(psnrs)), 2),
            "ssim": round(float(np.mean(ssims)), 4), "s_per_pair": round(seconds, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path, help="celebamask-mini (images/ + masks/)")
    ap.add_argument("--weights", type=Path, help="learned generator (default: the shipped real-face weights)")
    ap.add_argument("--pairs", type=int, default=80, help="at most this many swaps (the split allows about 60)")
    ap.add_argument("--cache", type=Path, default=ROOT / "runs" / "caches", help="label caches (as mgpe train pack)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--write-card", action="store_true", help="store the learned figures in the weights' card")
    args = ap.parse_args()

    from mgpe_toolkit import Pipeline
    from mgpe_toolkit.metrics.fid import InceptionFeatures, frechet_distance, statistics

    weights = args.weights or default_weights()
    targets, sources, references, portraits = held_out_pairs(args.folder, args.cache, args.pairs)
    n = len(targets)
    features = InceptionFeatures()
    ref_stats = statistics(features([f[0] for f in references]))
    floor = frechet_distance(*statistics(features([f[0] for f in targets])), *ref_stats)
    parser = Pipeline()
    ceiling = mask_agreement(parser, [t[0] for t in targets], targets)
    print(f"held out: {portraits} portraits; {n} swaps onto targets, {len(references)} reference faces; "
          f"FID floor (real targets vs references) {floor:.2f}; mask accuracy of the real targets {ceiling:.4f}")
    methods = {"classical": Pipeline()}
    if weights is not None:
        methods[f"learned ({weights.parent.name})"] = Pipeline.learned(str(weights))
    else:
        print("no learned weights found (--weights): classical only")
    report = {"pairs": n, "references": len(references), "fid_floor": round(floor, 2),
              "mask_accuracy_real": round(ceiling, 4), "methods": {}}
    for name, pipe in methods.items():
        r = evaluate(pipe, targets, sources, ref_stats, parser, features)
        report["methods"][name] = r
        print(f"{name:<28} FID {r['fid']:7.2f}  mask accuracy {r['mask_accuracy']:.4f}  reconstruction PSNR "
              f"{r['psnr']:.2f} dB SSIM {r['ssim']:.4f}  {r['s_per_pair']:.2f} s/pair")
    if args.json:
        from mgpe_toolkit.io import write_json

        write_json(args.json, report)
    if args.write_card and weights is not None:
        from mgpe_toolkit.io import write_json

        card_path = weights.with_suffix(".json")
        card = json.loads(card_path.read_text())
        learned = next(v for k, v in report["methods"].items() if k.startswith("learned"))
        card["held_out"] = {**learned, "classical": report["methods"]["classical"], "fid_floor": report["fid_floor"],
                            "pairs": n, "data": f"celebamask-mini held-out split ({portraits} portraits)",
                            "measured_by": "python benchmarks/eval_generator.py ../shared/data/celebamask-mini"}
        write_json(card_path, card)
        print(f"wrote the figures into {card_path}")


if __name__ == "__main__":
    main()
