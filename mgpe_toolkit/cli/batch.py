"""`mgpe export onnx` and `mgpe batch`."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer

from ..errors import EXIT_SOME_FAILED
from ..weights import REPO_MODELS
from .app import _console, app, drive, fail, plan_folder, styled

export_app = typer.Typer(help="Export the learned stages (ONNX graphs + manifest).", no_args_is_help=True,
                         rich_markup_mode="rich")
DEMO = REPO_MODELS / "demo-tiny"


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
        weights = str(DEMO / "mgpe-gan.safetensors")
        if parser_weights is None and (DEMO / "parser-unet.safetensors").is_file():
            parser_weights = str(DEMO / "parser-unet.safetensors")
    elif parser_weights is None:
        from ..stages.parse_unet import default_weights

        found = default_weights()
        parser_weights = str(found) if found else None
    for label, path in (("--weights", weights), ("--parser-weights", parser_weights)):
        if path and not Path(path).is_file():
            fail(f"{label} {path}: no such file")
    if fp16 and int8:
        fail("give --fp16 or --int8, not both")
    precision = "fp16" if fp16 else "int8" if int8 else "fp32"
    trained_on = _card_data(Path(weights).with_suffix(".json"))
    if int8 and calibrate.startswith("synthetic:") and trained_on and not trained_on.startswith("synthetic"):
        _console(stderr=True).print(styled("note:", "yellow", f"{weights} was trained on {trained_on}, and --int8 "
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
    con = _console()
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


def _check_source_face(path: str, aligner: Optional[str], parser: Optional[str], components: list[str]) -> None:
    """The face every photo takes (--swap-from / --from) is read, aligned and parsed once here, so a bad one (or
    one without a component --transfer takes) is a one-line error naming it before any worker starts."""
    import numpy as np

    from ..errors import InputError, NoFaceError
    from ..io import read_image
    from ..labels import COMPONENTS
    from ..pipeline import Pipeline

    if not Path(path).is_file():
        fail(f"{path}: no such file")
    try:
        face = Pipeline(align=aligner, parse=parser).prepare(read_image(path))
    except InputError as exc:
        fail(f"{path}: {exc.problem}")
    except NoFaceError:
        fail(f"{path}: no face found in the face to take")
    lacking = [n for n in components if not np.isin(face.mask.labels, COMPONENTS[n].indices).any()]
    if lacking:
        fail(f"{path}: has no {' or '.join(lacking)} in its mask (bald or covered?) for --transfer to take")


def _card_data(card: Path) -> str:
    """The `data` a model card says its weights were trained on ("" when unknown)."""
    try:
        return str(json.loads(card.read_text()).get("data", ""))
    except (OSError, ValueError, AttributeError):
        return ""


@app.command("batch")
def batch_cmd(
    source: str = typer.Argument(..., help="A folder of photos (walked recursively) or one photo; with --engine ray "
                                 "also a .txt/.csv/.parquet list of paths or a URI (s3://, gs://, ...)."),
    out: str = typer.Argument(..., help="Output folder: one result per photo, same relative layout, PNG."),
    mask_op: list[str] = typer.Option([], "--mask-op", "-m", help="Edit every photo with these mask ops."),
    swap_from: Optional[str] = typer.Option(None, "--swap-from", help="Put this face (with its hair) on every photo."),
    transfer: Optional[str] = typer.Option(None, "--transfer", help="Components to transfer (with --from)."),
    from_: Optional[str] = typer.Option(None, "--from", help="The face whose components --transfer takes."),
    shape: str = typer.Option("target", "--shape", help="swap: whose mask shapes are kept (target|source)."),
    backend: str = typer.Option("auto", "--backend", help="auto, classical, onnx (an export) or torch (weights)."),
    exports: Optional[str] = typer.Option(None, "--exports", help="An export for the onnx backend: a manifest file, "
                                          "or a folder with manifest.json (or with one manifest.*.json, e.g. from "
                                          "--int8 alone); --backend onnx alone reads ./exports."),
    weights: Optional[str] = typer.Option(None, "--weights", help="mgpe-gan.safetensors for --backend torch."),
    providers: str = typer.Option("auto", "--providers", help="onnxruntime providers, e.g. "
                                  "CUDAExecutionProvider,CPUExecutionProvider (default: best available)."),
    batch_size: int = typer.Option(0, "--batch-size", min=0, help="Faces per learned-stage call (0: 8 on a GPU, "
                                   "1 on a CPU, where it measured fastest)."),
    workers: int = typer.Option(0, "--workers", min=0, help="Processes for decode/align/parse (0 = CPU count)."),
    aligned_out: bool = typer.Option(False, "--aligned-out", help="Also write NAME.aligned.png."),
    parser: Optional[str] = typer.Option(None, "--parser"),
    aligner: Optional[str] = typer.Option(None, "--aligner"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo photos whose outputs exist."),
    engine: str = typer.Option("local", "--engine", help="local (worker processes) or ray (a Ray cluster through "
                               "Ray Data; needs the `cluster` extra)."),
    address: Optional[str] = typer.Option(None, "--address", help="--engine ray: auto (the cluster this machine is "
                                          "a node of) or the head's HOST:PORT; default: a local Ray on this "
                                          "machine. Not ray:// (Ray Client cannot run Ray Data)."),
    cpus_per_task: float = typer.Option(1.0, "--cpus-per-task", min=0.1, help="--engine ray: CPUs each task "
                                        "(and each learned-stage actor on a GPU) asks for."),
    cpus_per_actor: Optional[float] = typer.Option(None, "--cpus-per-actor", min=0.0, help="--engine ray: CPUs "
                                                   "each learned-stage actor reserves (default: none on CPUs, its one "
                                                   "thread shares the tasks' cores; --cpus-per-task with a GPU)."),
    gpus_per_actor: float = typer.Option(0.0, "--gpus-per-actor", min=0.0, help="--engine ray: GPU share of each "
                                         "learned-stage actor (0: the learned stages run on CPUs)."),
):
    """Edit a whole folder (mask ops, swap+ or transfer) in batches; resumable, per-file error report."""
    from ..batch import BatchTask, default_batch_size, run_batch
    from ..labels import COMPONENTS

    modes = [bool(mask_op), swap_from is not None, transfer is not None]
    if sum(modes) != 1:
        fail("give exactly one of --mask-op, --swap-from, --transfer (with --from)")
    if transfer is not None and from_ is None:
        fail("--transfer needs --from FACE")
    components = []
    if transfer is not None:
        for part in (p.strip() for p in transfer.split(",") if p.strip()):
            for name in (["left_eye", "right_eye"] if part == "eyes" else [part]):
                if name not in COMPONENTS:
                    fail(f"--transfer {part!r}: not a component ({', '.join(COMPONENTS)}, or eyes)")
                components.append(name)
    face_source = swap_from or from_
    if face_source is not None:
        _check_source_face(face_source, aligner, parser, components)
    if engine not in ("local", "ray"):
        fail(f"--engine must be local or ray, not {engine!r}")
    if engine == "ray":
        from importlib.util import find_spec

        from ..distributed.ray_batch import is_list_or_uri, plan_list

        if find_spec("ray") is None:
            fail("--engine ray needs Ray: pip install 'mgpe-toolkit[cluster]'")
    if engine == "ray" and is_list_or_uri(source):
        jobs, not_images = plan_list(source, out)
    else:
        # plan_folder refuses layouts that lose photos; stems may hold dots (`my.photo`), so the suffix is added.
        planned, not_images = plan_folder(source, out, (".aligned",) if aligned_out else ())
        jobs = [(p, s.with_name(s.name + ".png")) for p, s in planned]
    if backend == "auto":  # only what the user named: never an ./exports that happens to lie here
        backend = "torch" if weights else ("onnx" if exports else "classical")
    exports = exports or "exports"
    kind = "edit" if mask_op else ("swap" if swap_from else "transfer")
    task = BatchTask(kind=kind, ops=list(mask_op), source=face_source, components=components, shape=shape,
                     backend=backend, parser=parser, aligner=aligner, aligned_out=aligned_out)
    task.validate()
    runner = None
    if backend == "onnx":
        from ..export.runtime import OnnxRunner

        runner = OnnxRunner(exports, providers)
        if "demo-tiny" in runner.manifest["weights"]["file"]:
            _console(stderr=True).print(styled("note:", "yellow", "this export holds the demo-tiny weights (synthetic "
                                               "portraits, 64², not photo-realistic); --backend classical for real "
                                               "photos"))
    elif backend == "torch":
        from ..export.runtime import TorchRunner

        if not weights:
            fail("--backend torch needs --weights mgpe-gan.safetensors")
        runner = TorchRunner(weights)
    if engine == "ray":
        _batch_on_ray(task, jobs, runner, exports, weights, providers, batch_size, overwrite, not_images, out,
                      address, cpus_per_task, gpus_per_actor, cpus_per_actor)
        return
    workers = workers or min(os.cpu_count() or 1, len(jobs))
    batch_size = batch_size or default_batch_size(runner)
    con = _console(stderr=True)
    con.print(f"batch {kind}: {len(jobs)} photos, backend {runner.describe() if runner else 'classical'}, "
              f"{workers} worker{'s' if workers > 1 else ''}, batch size {batch_size}")
    drive(run_batch(task, jobs, runner=runner, workers=workers, batch_size=batch_size, overwrite=overwrite),
          len(jobs), "batch", "img/s", lambda o: o.status == "done", f"batch {kind} ({backend}) → {out}", not_images)


def _batch_on_ray(task, jobs, runner, exports, weights, providers, batch_size, overwrite, not_images, out, address,
                  cpus_per_task, gpus_per_actor, cpus_per_actor) -> None:
    """`mgpe batch --engine ray`: the run on Ray Data, the local engine's summary, then the throughput."""
    import time

    import ray

    from ..distributed.ray_batch import RayOptions, RunnerSpec, connect, run_ray_batch

    spec = RunnerSpec(task.backend, exports=exports, weights=weights, providers=providers) if runner else None
    options = RayOptions(address=address, cpus_per_task=cpus_per_task, gpus_per_actor=gpus_per_actor,
                         cpus_per_actor=cpus_per_actor, batch_size=batch_size)
    con = _console(stderr=True)
    con.print(f"batch {task.kind}: {len(jobs)} photos, backend "
              f"{runner.describe() + ' here, providers picked per actor' if runner else 'classical'}, Ray at "
              f"{address or 'a local Ray'}, {cpus_per_task:g} CPU per task"
              + (f", {gpus_per_actor:g} GPU per actor" if gpus_per_actor else ""), soft_wrap=True)
    started = connect(address)  # before the progress bar: a cluster it cannot reach is a one-line error
    done, start = [0], time.perf_counter()

    def counted(outcomes):
        for o in outcomes:
            done[0] += o.status == "done"
            yield o

    try:
        drive(counted(run_ray_batch(task, jobs, options, runner=spec, overwrite=overwrite)), len(jobs), "batch",
              "img/s", lambda o: o.status == "done", f"batch {task.kind} ({task.backend}) → {out}", not_images)
    finally:
        took = time.perf_counter() - start
        con.print(f"throughput: {done[0]} photos edited in {took:.1f} s, {done[0] / max(took, 1e-9):.2f} photos/s")
        if started:
            ray.shutdown()
