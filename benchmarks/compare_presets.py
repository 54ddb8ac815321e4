"""Train `paper` and `lean` on real faces for the same wall time each and compare held-out paired reconstruction.

    python benchmarks/compare_presets.py ../shared/data/lfw-hair [--minutes 5] [--scale small|full]
                                         [--device cpu|cuda] [--photos 400] [--out runs/compare]

The photos (lfw-hair `images/`) are aligned and parsed by the toolkit (default aligner and parser) into
OUT/data/{train,heldout}/{images,masks}/, split by person (the parser's held-out people stay held out). Each preset
trains from scratch for --minutes; then each reconstructs the held-out faces from their own components and masks
(x_s = x_t) and the script prints PSNR / SSIM and writes OUT/grid.png (rows: photo, lean, paper).
`--scale small` narrows both networks so a CPU gets a few hundred steps; `full` runs the presets as they are
(a GPU). The parsing loss uses the shipped parser; the perceptual loss runs only where VGG19 weights are at hand.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

SMALL = {
    "lean": dict(comp_width=16, comp_channels=16, mask_channels=32, gen_channels=64, gen_blocks=2, bg_channels=32,
                 disc_channels=32, batch=2),
    "paper": dict(comp_width=16, comp_channels=32, mask_channels=32, gen_channels=32, gen_blocks=3, bg_channels=16,
                  latent=64, disc_channels=16, batch=2),
}


def prepare(folder: Path, out: Path, photos: int) -> tuple[Path, Path]:
    """Aligned crops + masks of the first `photos` lfw-hair photos, split by person; cached in `out`."""
    from rich.progress import track

    from mgpe_toolkit import Pipeline
    from mgpe_toolkit.io import read_image, write_image, write_mask
    from mgpe_toolkit.train.pseudo import held_out

    pipe = Pipeline()
    for path in track(sorted((folder / "images").glob("*.jpg"))[:photos], description="align + parse"):
        split = "heldout" if held_out(path.name) else "train"
        dst = out / split / "masks" / (path.stem + ".png")
        if dst.exists():
            continue
        faces = pipe.align(read_image(path), size=256)
        if not faces:
            continue
        write_image(out / split / "images" / (path.stem + ".png"), faces[0].image)
        write_mask(dst, pipe.parse(faces[0].image).labels)
    return out / "train", out / "heldout"


def train_for(name: str, cfg, train_dir: Path, out: Path, seconds: float, device: str):
    from mgpe_toolkit.weights import default_parser
    from mgpe_toolkit.data.sets import open_dataset
    from mgpe_toolkit.train.gan import GANTrainer

    trainer = GANTrainer(open_dataset(str(train_dir), None, "canonical", 256), out / name, cfg,
                         parser_weights=default_parser() if cfg.lambda_gp > 0 else None, device=device)
    said = trainer.use_perceptual(None)
    start, first, last = time.perf_counter(), None, None
    while time.perf_counter() - start < seconds:
        losses = trainer.train_step()
        first = first or losses
        last = losses
    trainer.save(f"lfw-hair aligned + parsed ({train_dir})")
    print(f"{name}: {trainer.step} steps in {time.perf_counter() - start:.0f} s; local {first['local']:.4f} -> "
          f"{last['local']:.4f}; perceptual loss {said}")
    return trainer


def reconstruct(trainer, heldout: Path, limit: int) -> tuple[list[np.ndarray], list[np.ndarray], dict]:
    import torch

    from mgpe_toolkit.io import read_image, read_mask
    from mgpe_toolkit.metrics.reconstruction import reconstruction_scores
    from mgpe_toolkit.nets.framework import onehot
    from mgpe_toolkit.nets.inputs import centres_of, dilate_components, foreground_region

    G, cfg = trainer.G.eval(), trainer.config
    photos, results, scores = [], [], []
    for path in sorted((heldout / "images").glob("*.png"))[:limit]:
        img = read_image(path)
        mask = dilate_components(read_mask(heldout / "masks" / path.name), cfg.dilate)
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(trainer.device)
        m = torch.from_numpy(mask)[None].to(trainer.device)
        c = centres_of(mask[None])
        with torch.no_grad():
            out, _ = G(trainer.crops(x, m, c), onehot(m), torch.from_numpy(c).to(trainer.device), x,
                       foreground_region(m))
        res = ((out[0].float().clamp(-1, 1).permute(1, 2, 0).cpu().numpy() + 1) * 127.5 + 0.5).astype(np.uint8)
        photos.append(img)
        results.append(res)
        scores.append(reconstruction_scores(res, img)["overall"])
    mean = {k: float(np.mean([s[k] for s in scores])) for k in ("psnr", "ssim", "l1")}
    return photos, results, mean


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path, help="lfw-hair (images/ + hair/)")
    ap.add_argument("--minutes", type=float, default=5.0, help="training wall time per preset")
    ap.add_argument("--scale", choices=("small", "full"), default="small")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--photos", type=int, default=400)
    ap.add_argument("--heldout", type=int, default=24, help="held-out faces to reconstruct")
    ap.add_argument("--out", type=Path, default=Path("runs/compare"))
    args = ap.parse_args()
    if not (args.folder / "images").is_dir():
        raise SystemExit(f"{args.folder}: no images/ folder (expected the lfw-hair layout)")
    import torch

    from mgpe_toolkit.io import write_image
    from mgpe_toolkit.nets.config import PRESETS
    from mgpe_toolkit.weights import pick_device

    torch.manual_seed(0)
    device = str(pick_device(args.device))
    train_dir, heldout = prepare(args.folder, args.out / "data", args.photos)
    missing = [what for what, d in (("training", train_dir), ("held-out", heldout)) if not any(d.glob("images/*.png"))]
    if missing:  # (reconstruct and the grid need at least one of each)
        raise SystemExit(f"no {' and no '.join(missing)} faces among the first {args.photos} photos of "
                         f"{args.folder}: raise --photos")
    print(f"data: {len(list((train_dir / 'images').glob('*.png')))} training faces, "
          f"{len(list((heldout / 'images').glob('*.png')))} held out; device {device}; {args.minutes} min each")
    rows, table = None, []
    for name in ("lean", "paper"):
        cfg = PRESETS[name]
        cfg = replace(cfg, **SMALL[name]) if args.scale == "small" else cfg
        cfg = replace(cfg, checkpoint_every=10**9, image_every=10**9)
        trainer = train_for(name, cfg, train_dir, args.out, args.minutes * 60, device)
        photos, results, mean = reconstruct(trainer, heldout, args.heldout)
        params = sum(p.numel() for n, p in trainer.G.named_parameters() if not n.startswith("decoders.")) / 1e6
        table.append((name, trainer.step, params, mean))
        rows = [np.concatenate(photos[:8], 1)] if rows is None else rows
        rows.append(np.concatenate(results[:8], 1))
        del trainer
    write_image(args.out / "grid.png", np.concatenate(rows, 0))
    print(f"\n{'preset':8s} {'steps':>6s} {'M params':>9s} {'PSNR dB':>8s} {'SSIM':>6s} {'L1':>6s}   "
          f"(held-out paired reconstruction, {args.heldout} faces)")
    for name, steps, params, m in table:
        print(f"{name:8s} {steps:6d} {params:9.2f} {m['psnr']:8.2f} {m['ssim']:6.3f} {m['l1']:6.3f}")
    print(f"grid: {args.out / 'grid.png'} (rows: photo, lean, paper)")


if __name__ == "__main__":
    main()
