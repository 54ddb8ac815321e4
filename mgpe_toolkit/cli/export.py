"""`mgpe export onnx`: the learned stages (and the parser) as ONNX graphs + manifest, checked against torch."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..errors import EXIT_SOME_FAILED
from ..weights import demo_weights
from .common import console, fail, styled

export_app = typer.Typer(help="Export the learned stages (ONNX graphs + manifest).", no_args_is_help=True,
                         rich_markup_mode="rich")


# The most |torch - onnxruntime| a graph may show on random inputs (fp32 exports measure about 1e-5).
PARITY_TOLERANCE = {"fp32": 1e-3, "fp16": 5e-2}


@export_app.command("onnx")
def export_onnx_cmd(
    weights: Optional[str] = typer.Option(None, "--weights", help="mgpe-gan.safetensors (default: the shipped "
                                          "demo checkpoint in models/demo-tiny)."),
    parser_weights: Optional[str] = typer.Option(None, "--parser-weights", help="Also export this U-Net parser "
                                                 "(default: the demo's with the demo weights, else the default "
                                                 "parser's: models/parser-real)."),
    out: str = typer.Option("exports", "--out", help="Output folder for *.onnx and manifest.json."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset (13..21)."),
    fp16: bool = typer.Option(False, "--fp16", help="Half-precision graphs (*.fp16.onnx, manifest.fp16.json)."),
    int8: bool = typer.Option(False, "--int8", help="int8 convolutions for CPUs, calibrated on --calibrate "
                              "(*.int8.onnx, manifest.int8.json)."),
    calibrate: str = typer.Option("synthetic:64", "--calibrate", help="--int8: aligned faces + masks to calibrate "
                                  "on, as `mgpe train --data` takes them; use faces like those you will edit."),
    calibrate_count: int = typer.Option(32, "--calibrate-count", min=1, help="--int8: how many of them."),
    check: bool = typer.Option(True, "--check/--no-check", help="Compare with torch on onnxruntime (CPU); "
                               "--int8: on 16 faces the calibration did not see."),
):
    """Write encoders, generator (with the feature placement), fuser and parser as ONNX graphs."""
    from rich.table import Table

    from ..export.onnx import export_onnx, measure_export, parity

    if weights is None:
        demo, demo_parser = demo_weights()
        weights = str(demo)
        if parser_weights is None and demo_parser is not None:
            parser_weights = str(demo_parser)
    elif parser_weights is None:
        from ..weights import default_parser

        found = default_parser()
        parser_weights = str(found) if found else None
    for label, path in (("--weights", weights), ("--parser-weights", parser_weights)):
        if path and not Path(path).is_file():
            fail(f"{label} {path}: no such file")
    if fp16 and int8:
        fail("give --fp16 or --int8, not both")
    precision = "fp16" if fp16 else "int8" if int8 else "fp32"
    trained_on = _card_data(Path(weights).with_suffix(".json"))
    if int8 and calibrate.startswith("synthetic:") and trained_on and not trained_on.startswith("synthetic"):
        console(stderr=True).print(styled("note:", "yellow", f"{weights} was trained on {trained_on}, and --int8 "
                                           "calibrates on synthetic portraits: pass --calibrate with faces like the "
                                           "training data"))
    manifest = export_onnx(weights, out, parser_weights=parser_weights, opset=opset, precision=precision,
                           calibrate=calibrate, calibrate_count=calibrate_count)
    man = json.loads(Path(manifest).read_text())
    table = Table(title=f"exported to {out} (opset {opset}, {precision})")
    last = "full-resolution convs kept fp32" if int8 else "max |torch - onnxruntime|"
    for col in ("graph", "file", "inputs", last):
        table.add_column(col)
    diffs = parity(weights, manifest, parser_weights=parser_weights) if check and not int8 else {}
    for name, g in man["graphs"].items():
        ins = ", ".join(f"{i['name']}{tuple(i['shape'])}" for i in g["inputs"])
        cell = str(man["calibration"]["fp32_convs"][name]) if int8 else f"{diffs[name]:.2e}" if name in diffs else "-"
        table.add_row(name, g["file"], ins, cell)
    con = console()
    con.print(table)
    tolerance = PARITY_TOLERANCE.get(precision, float("inf"))  # int8 is measured against fp32 below
    off = {name: d for name, d in diffs.items() if not d <= tolerance}
    if off:
        name, d = next(iter(off.items()))
        fail(f"{out}: the {name} graph differs from torch by {d:.3g} (tolerance {tolerance:g} in {precision}): "
             "the export does not compute what the weights do", EXIT_SOME_FAILED)
    if int8:
        con.print(f"calibrated on {man['calibration']['count']} faces of {man['calibration']['data']}")
    if int8 and check:
        q, described = measure_export(weights, manifest, parser_weights=parser_weights)
        parsed = f"; parser agrees on {q.parser_agreement:.1%} of pixels" if q.parser_agreement is not None else ""
        con.print(f"int8 vs fp32 torch on {q.faces} held-out faces ({described}): image PSNR {q.image_psnr:.1f} dB "
                  f"(worst {q.worst_psnr:.1f}); reconstruction PSNR {q.recon_psnr_fp32:.2f} dB in fp32, "
                  f"{q.recon_psnr_int8:.2f} in int8{parsed}")
    con.print(f"manifest: {manifest}")


def _card_data(card: Path) -> str:
    """The `data` a model card says its weights were trained on ("" when unknown)."""
    try:
        return str(json.loads(card.read_text()).get("data", ""))
    except (OSError, ValueError, AttributeError):
        return ""
