"""One rank of the distributed tests' runs (started by mgpe_toolkit.train.launch, or called in-process for
the one-process reference): a tiny GAN or parser run on synthetic portraits, checkpoint every step.

python tests/ddp_worker.py gan|parser OUT STEPS '{"norm": "batch", ...}' [--resume] [--fail-at RANK:STEP]
                                                                     [--snapshot-at STEP]
--snapshot-at K keeps step K's checkpoint as OUT/checkpoint-K.safetensors (for resuming from it later).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace


def train(kind: str, out: str, steps: int, overrides: dict, *, resume: bool = False, fail_at: str | None = None,
          snapshot_at: int | None = None):
    import shutil
    from pathlib import Path

    from mgpe_toolkit.data.sets import SyntheticSet

    def on_step(step, _losses):
        if snapshot_at is not None and step == snapshot_at + 1 and trainer.world.main:  # step K's is on disk
            shutil.copy(Path(out) / "checkpoint.safetensors", Path(out) / f"checkpoint-{snapshot_at}.safetensors")
        if fail_at and trainer.world.rank == int(fail_at.split(":")[0]) and step == int(fail_at.split(":")[1]):
            raise RuntimeError(f"injected failure at step {step}")

    if kind == "gan":
        from mgpe_toolkit.nets.config import PRESETS
        from mgpe_toolkit.train.gan import GANTrainer, run_gan_training

        cfg = replace(PRESETS["tiny"], resolution=64, batch=4, lambda_gp=0.0, checkpoint_every=1, image_every=1000,
                      **overrides)
        data = SyntheticSet(12, 64)
        trainer = GANTrainer(data, out, cfg, parser_weights=None, device="cpu")
        if resume:
            trainer.resume(data.describe())
        run_gan_training(trainer, steps, data_description=data.describe(), on_step=on_step, workers=0)
    else:
        from mgpe_toolkit.train.parser import ParserTrainConfig, ParserTrainer, run_training

        cfg = ParserTrainConfig(**{"size": 32, "base": 4, "depth": 2, "batch": 4, "checkpoint_every": 1,
                                   "augment": "wild", **overrides})
        data = SyntheticSet(12, 32)
        trainer = ParserTrainer(data, out, cfg, device="cpu")
        if resume:
            trainer.resume(data.describe())
        run_training(trainer, steps, data_description=data.describe(), on_step=on_step, workers=0)
    return trainer


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=("gan", "parser"))
    ap.add_argument("out")
    ap.add_argument("steps", type=int)
    ap.add_argument("overrides", nargs="?", default="{}")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--fail-at")
    ap.add_argument("--snapshot-at", type=int)
    a = ap.parse_args()
    train(a.kind, a.out, a.steps, json.loads(a.overrides), resume=a.resume, fail_at=a.fail_at,
          snapshot_at=a.snapshot_at)
    from mgpe_toolkit.train.ddp import finish

    finish()  # as `mgpe train` ends a rank
