"""Training speed and memory of `mgpe train`, and the inference cost of the paper config.

Usage: python benchmarks/bench_train.py [--steps 20] [--gpu-batch 8]
Prints: it/s and peak RSS for `tiny` on CPU (synthetic portraits, batch 8, no parser loss), the paper config's
GFLOPs and parameters per edited 256² image (torch.utils.flop_counter), and, when CUDA is present, `paper` at
batch 8 in bf16: it/s and peak GPU memory, with the GPU model.
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from dataclasses import replace


def run(config, steps: int, device: str) -> float:
    from mgpe_toolkit.train.data import SyntheticSet
    from mgpe_toolkit.train.gan import GANTrainer

    with tempfile.TemporaryDirectory() as out:
        trainer = GANTrainer(SyntheticSet(64, config.resolution), out, config, parser_weights=None, device=device)
        trainer.train_step()
        trainer.train_step()  # warm-up: one paired, one unpaired
        if trainer.device.type == "cuda":
            import torch
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(steps):
            trainer.train_step()
        if trainer.device.type == "cuda":
            import torch
            torch.cuda.synchronize()
        return steps / (time.perf_counter() - t)


def main() -> None:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mgpe_toolkit.data.synthetic import synthetic_portrait
    from mgpe_toolkit.nets.config import PRESETS
    from mgpe_toolkit.nets.framework import MaskGuidedFramework, centres_of, component_crops, foreground_region, onehot

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--gpu-batch", type=int, default=8)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")

    tiny = replace(PRESETS["tiny"], lambda_gp=0.0)
    rate = run(tiny, args.steps, "cpu")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"tiny (64², batch {tiny.batch}) on CPU: {rate:.2f} it/s, peak RSS {rss:.0f} MiB")

    G = MaskGuidedFramework(PRESETS["paper"]).eval()
    p = synthetic_portrait(0, 256)
    x = torch.from_numpy(p.image).permute(2, 0, 1)[None].float() / 127.5 - 1
    m = torch.from_numpy(p.mask)[None]
    c = centres_of(m.numpy())
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        G(component_crops(x, m, c), onehot(m), torch.from_numpy(c), x, foreground_region(m))
    params = sum(v.numel() for k, v in G.state_dict().items() if not k.startswith("decoders."))
    print(f"paper (256²) inference: {counter.get_total_flops() / 1e9:.1f} GFLOPs per edited image, "
          f"{params / 1e6:.2f} M parameters (budget 64 GFLOPs)")

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        paper = replace(PRESETS["paper"], lambda_gp=0.0, batch=args.gpu_batch)
        rate = run(paper, args.steps, "cuda")
        peak = torch.cuda.max_memory_allocated() / 2 ** 30
        print(f"paper (256², batch {paper.batch}, bf16) on {torch.cuda.get_device_name()}: {rate:.2f} it/s, "
              f"peak {peak:.1f} GiB")
    else:
        print("no CUDA GPU: GPU figures skipped")


if __name__ == "__main__":
    main()
