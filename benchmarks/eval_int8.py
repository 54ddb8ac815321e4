"""What `mgpe export onnx --int8` costs in quality: int8 graphs against the fp32 torch networks.

Usage: python benchmarks/eval_int8.py [--weights models/demo-tiny/mgpe-gan.safetensors] [--parser-weights FILE]
                                      [--calibrate synthetic:64] [--count 32] [--faces 32]
                                      [--quantize-full-resolution]
Exports the int8 graphs to a temporary folder, then runs both on `--faces` faces the calibration did not see
(held-out synthetic portraits, seeds 50000.., for a synthetic calibration set): reconstructions and swaps.
Prints the PSNR of the int8 result against the fp32 result (mean and worst image), the reconstruction PSNR
against the real face with each, and the parser's pixel agreement. Then, on the demo's real photos
(astronaut, grace_hopper), the same `mgpe batch -m hair->skin` through both exports: PSNR of the aligned results.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

DEMO = Path(__file__).resolve().parents[1] / "models" / "demo-tiny"


def on_photos(weights: Path, int8: Path, tmp: Path) -> dict[str, float]:
    from mgpe_toolkit.batch.local import BatchTask, run_batch
    from mgpe_toolkit.demo import demo_photos
    from mgpe_toolkit.export.onnx import export_onnx
    from mgpe_toolkit.export.runtime import OnnxRunner
    from mgpe_toolkit.io import read_image, write_image
    from mgpe_toolkit.metrics.reconstruction import psnr

    fp32 = export_onnx(weights, tmp / "fp32")
    jobs = {}
    for name, image in demo_photos().items():
        write_image(tmp / "photos" / f"{name}.png", image)
        jobs[name] = tmp / "photos" / f"{name}.png"
    aligned = {}
    for label, manifest in (("int8", int8), ("fp32", fp32)):
        task = BatchTask(kind="edit", ops=["hair->skin"], backend="onnx", aligned_out=True)
        runner = OnnxRunner(manifest, "CPUExecutionProvider")
        todo = [(photo, tmp / label / f"{name}.png") for name, photo in jobs.items()]
        for outcome in run_batch(task, todo, runner=runner, overwrite=True):
            if outcome.status != "done":
                raise SystemExit(f"{outcome.source}: {outcome.status} {outcome.error or ''}")
        aligned[label] = {name: read_image(tmp / label / f"{name}.aligned.png") for name in jobs}
    return {name: psnr(aligned["int8"][name], aligned["fp32"][name]) for name in jobs}


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    from mgpe_toolkit.export.onnx import export_onnx, measure_export

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, default=DEMO / "mgpe-gan.safetensors")
    ap.add_argument("--parser-weights", type=Path, default=None,
                    help="default: the demo parser with the demo weights, none otherwise")
    ap.add_argument("--calibrate", default="synthetic:64")
    ap.add_argument("--count", type=int, default=32)
    ap.add_argument("--faces", type=int, default=32)
    ap.add_argument("--quantize-full-resolution", action="store_true",
                    help="also quantize the full-resolution convolutions (the export keeps them fp32)")
    args = ap.parse_args()
    parser = args.parser_weights
    if parser is None and args.weights.resolve() == (DEMO / "mgpe-gan.safetensors").resolve():
        parser = DEMO / "parser-unet.safetensors"
    with tempfile.TemporaryDirectory() as tmp:
        manifest = export_onnx(args.weights, tmp, parser_weights=parser, precision="int8",
                               calibrate=args.calibrate, calibrate_count=args.count,
                               keep_full_resolution=not args.quantize_full_resolution)
        q, described = measure_export(args.weights, manifest, parser_weights=parser, faces=args.faces)
        photos = on_photos(args.weights, manifest, Path(tmp))
    table = Table(title=f"int8 vs fp32: {args.weights}, calibrated on {args.count} of {args.calibrate}; "
                        f"measured on {described}"
                        + ("; full-resolution convs quantized too" if args.quantize_full_resolution else ""))
    for col in ("measure", "value"):
        table.add_column(col)
    table.add_row("result PSNR int8 vs fp32, mean (dB)", f"{q.image_psnr:.1f}")
    table.add_row("result PSNR int8 vs fp32, worst image (dB)", f"{q.worst_psnr:.1f}")
    table.add_row("reconstruction PSNR vs the real face, fp32 (dB)", f"{q.recon_psnr_fp32:.2f}")
    table.add_row("reconstruction PSNR vs the real face, int8 (dB)", f"{q.recon_psnr_int8:.2f}")
    if q.parser_agreement is not None:
        table.add_row("parser: pixels with the same label", f"{q.parser_agreement:.4f}")
    for name, value in photos.items():
        table.add_row(f"photo {name}, hair->skin: aligned result PSNR int8 vs fp32 (dB)", f"{value:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
