"""Metrics of the shipped demo weights (models/demo-tiny) on held-out synthetic portraits.

Usage: python benchmarks/eval_demo_weights.py [--dir models/demo-tiny] [--n 64] [--write-cards]
Parser: per-pixel accuracy. Framework (paired, x_s = x_t): ½·MSE (L_global), PSNR and SSIM of the result, and
the demo parser's per-pixel agreement with the target mask (paper Table 2 metric). Seeds 50000.. are never
used in training (training uses seeds 0..999). --write-cards stores the figures in the model cards.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    import numpy as np
    import torch

    from mgpe_toolkit.metrics.reconstruction import psnr, ssim
    from mgpe_toolkit.nets.framework import onehot
    from mgpe_toolkit.nets.inputs import centres_of, component_crops, foreground_region
    from mgpe_toolkit.weights import load_unet
    from mgpe_toolkit.data.sets import SyntheticSet
    from mgpe_toolkit.train.data import batch_tensors
    from mgpe_toolkit.weights import load_generator

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", type=Path, default=Path(__file__).resolve().parents[1] / "models" / "demo-tiny")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--write-cards", action="store_true")
    args = ap.parse_args()
    parser, psize = load_unet(args.dir / "parser-unet.safetensors")
    G = load_generator(args.dir / "mgpe-gan.safetensors")
    res = G.config.resolution
    held = SyntheticSet(args.n, res, seed=50_000)
    parse_acc, glob, psnrs, ssims, agree = [], [], [], [], []
    with torch.no_grad():
        for i in range(args.n):
            s = held.load(i)
            x, m = batch_tensors([s], [False])
            parse_acc.append(float((parser(x).argmax(1) == m).float().mean()))
            c = centres_of(m.numpy())
            out, _ = G(component_crops(x, m, c), onehot(m), torch.from_numpy(c), x, foreground_region(m))
            glob.append(float(0.5 * torch.mean((out - x) ** 2)))
            img = ((out[0].permute(1, 2, 0).clamp(-1, 1).numpy() + 1) * 127.5 + 0.5).astype(np.uint8)
            psnrs.append(psnr(img, s.image))
            ssims.append(ssim(img, s.image))
            agree.append(float((parser(out).argmax(1) == m).float().mean()))
    parser_metrics = {"held_out_pixel_accuracy": round(float(np.mean(parse_acc)), 4), "held_out_n": args.n,
                      "measured_by": "python benchmarks/eval_demo_weights.py"}
    gan_metrics = {"held_out_global_half_mse": round(float(np.mean(glob)), 4), "psnr": round(float(np.mean(psnrs)), 2),
                   "ssim": round(float(np.mean(ssims)), 4), "mask_agreement": round(float(np.mean(agree)), 4),
                   "held_out_n": args.n, "measured_by": "python benchmarks/eval_demo_weights.py"}
    print(f"parser: held-out per-pixel accuracy {parser_metrics['held_out_pixel_accuracy']:.4f} ({args.n} portraits)")
    print(f"framework (paired): L_global {gan_metrics['held_out_global_half_mse']:.4f}, PSNR {gan_metrics['psnr']:.2f} dB, "
          f"SSIM {gan_metrics['ssim']:.4f}, parser agreement with the target mask {gan_metrics['mask_agreement']:.4f}")
    if args.write_cards:
        from mgpe_toolkit.io import write_json

        for name, metrics in (("parser-unet.json", parser_metrics), ("mgpe-gan.json", gan_metrics)):
            card = json.loads((args.dir / name).read_text())
            card["metrics"] = metrics
            write_json(args.dir / name, card)


if __name__ == "__main__":
    main()
