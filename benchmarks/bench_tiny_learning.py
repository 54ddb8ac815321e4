"""What 300 `tiny` steps on synthetic portraits achieve, measured on 16 held-out portraits (paired).

Usage: python benchmarks/bench_tiny_learning.py [--steps 300] [--parser-steps 200]
Trains P_F first (200 steps, 64², as the parsing loss needs it), then the framework; prints L_global, L_local
and the parser's per-pixel agreement with the target mask (paper Table 2 metric) before and after.
"""
from __future__ import annotations

import argparse
import tempfile
import time


def main() -> None:
    from mgpe_toolkit.nets.config import PRESETS
    from mgpe_toolkit.data.sets import SyntheticSet
    from mgpe_toolkit.train.gan import GANTrainer, run_gan_training
    from mgpe_toolkit.train.parser import ParserTrainConfig, ParserTrainer, run_training

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--parser-steps", type=int, default=200, help="P_F's training steps first")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        parser = ParserTrainer(SyntheticSet(300, 64), f"{out}/p", ParserTrainConfig(size=64, base=8, batch=8,
                                                                                    checkpoint_every=10_000))
        run_training(parser, args.parser_steps, data_description="synthetic")
        trainer = GANTrainer(SyntheticSet(300, 64), f"{out}/g", PRESETS["tiny"],
                             parser_weights=f"{out}/p/parser-unet.safetensors", device="cpu")
        held_out = SyntheticSet(16, 64, seed=90_000)
        before = trainer.evaluate(held_out)
        t = time.perf_counter()
        run_gan_training(trainer, args.steps, data_description="synthetic")
        seconds = time.perf_counter() - t
        after = trainer.evaluate(held_out)
    print(f"{args.steps} steps in {seconds:.0f} s")
    for key in ("global", "local", "mask_accuracy"):
        print(f"{key:14s} {before[key]:.3f} -> {after[key]:.3f}")


if __name__ == "__main__":
    main()
