"""The protocol of the paper's Table 3 (face parsing with and without generated training data), at small
scale on the synthetic portraits.

Usage: python benchmarks/parsing_augmentation.py [--real 40] [--generated 80] [--steps 400] [--test 64]
Parser A trains on N real pairs (synthetic portraits with their exact masks). Parser B trains on the same N
plus M generated pairs: faces synthesised (classical stages) on the masks of other portraits, with random
sources among the N, each paired with its target mask as ground truth (what `mgpe augment` writes). Both are
evaluated on held-out portraits; the script prints both accuracies, whichever way they go.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    import numpy as np

    from mgpe_toolkit import Pipeline
    from mgpe_toolkit.data.synthetic import synthetic_portrait
    from mgpe_toolkit.io import write_image, write_mask
    from mgpe_toolkit.data.sets import PairFolder, SyntheticSet
    from mgpe_toolkit.train.parser import ParserTrainConfig, ParserTrainer, run_training

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--real", type=int, default=40)
    ap.add_argument("--generated", type=int, default=80)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--test", type=int, default=64)
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()
    pipe = Pipeline(encode="classical", generate="classical", fuse="classical")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        real_dir, aug_dir = Path(tmp) / "real", Path(tmp) / "aug"
        portraits = [synthetic_portrait(i, args.size) for i in range(args.real)]
        faces = [pipe.prepare(p.image, aligned=True, mask=p.mask) for p in portraits]
        for i, p in enumerate(portraits):
            for d in (real_dir, aug_dir):
                write_image(d / "images" / f"r{i}.png", p.image)
                write_mask(d / "masks" / f"r{i}.png", p.mask)
        t = time.perf_counter()
        made = 0
        for j in range(args.generated):
            target = synthetic_portrait(100_000 + j, args.size).mask  # masks no real pair has
            source = faces[int(rng.integers(len(faces)))]
            try:
                image = pipe.synth(target, [source])[0].aligned
            except Exception:
                continue
            write_image(aug_dir / "images" / f"g{j}.png", image)
            write_mask(aug_dir / "masks" / f"g{j}.png", target)
            made += 1
        print(f"generated {made} pairs in {time.perf_counter() - t:.1f} s")
        test = SyntheticSet(args.test, args.size, seed=50_000)
        results = {}
        for label, folder in (("real only", real_dir), ("real + generated", aug_dir)):
            trainer = ParserTrainer(PairFolder(folder / "images", folder / "masks"), Path(tmp) / label,
                                    ParserTrainConfig(size=args.size, base=8, batch=8, checkpoint_every=10 ** 6))
            run_training(trainer, args.steps, data_description=label)
            results[label] = trainer.evaluate(test, limit=args.test)
    for label, acc in results.items():
        print(f"{label:18s} ({args.real} real{f' + {made} generated' if 'generated' in label else ''}): "
              f"held-out per-pixel accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
