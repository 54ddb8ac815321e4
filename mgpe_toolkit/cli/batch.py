"""`mgpe export onnx` and `mgpe batch`."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from ..weights import DEMO
from .common import app, console, drive, fail, plan_folder, styled


def _check_source_face(path: str, aligner: Optional[str], parser: Optional[str], components: list[str]) -> None:
    """The face every photo takes (--swap-from / --from) is read, aligned and parsed once here, so a bad one (or
    one without a component --transfer takes) is a one-line error naming it before any worker starts."""

    from ..errors import InputError, NoFaceError
    from ..io import read_image
    from ..labels import has_component
    from ..pipeline import Pipeline

    if not Path(path).is_file():
        fail(f"{path}: no such file")
    try:
        face = Pipeline(align=aligner, parse=parser).prepare(read_image(path))
    except InputError as exc:
        fail(f"{path}: {exc.problem}")
    except NoFaceError:
        fail(f"{path}: no face found in the face to take")
    lacking = [n for n in components if not has_component(face.mask.labels, n)]
    if lacking:
        fail(f"{path}: has no {' or '.join(lacking)} in its mask (bald or covered?) for --transfer to take")


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
    from ..batch.local import BatchTask, default_batch_size, run_batch
    from ..labels import UnknownComponent, component_names

    modes = [bool(mask_op), swap_from is not None, transfer is not None]
    if sum(modes) != 1:
        fail("give exactly one of --mask-op, --swap-from, --transfer (with --from)")
    if transfer is not None and from_ is None:
        fail("--transfer needs --from FACE")
    components = []
    if transfer is not None:
        try:
            components = component_names(p.strip() for p in transfer.split(",") if p.strip())
        except UnknownComponent as exc:
            fail(f"--transfer {exc}")
    face_source = swap_from or from_
    if face_source is not None:
        _check_source_face(face_source, aligner, parser, components)
    if engine not in ("local", "ray"):
        fail(f"--engine must be local or ray, not {engine!r}")
    if engine == "ray":
        from importlib.util import find_spec

        from ..batch.sources import is_list_or_uri, plan_list

        if find_spec("ray") is None:
            fail("--engine ray needs Ray: pip install 'mgpe-toolkit[cluster]'")
    if engine == "ray" and is_list_or_uri(source):
        jobs, not_images = plan_list(source, out, (".aligned",) if aligned_out else ())
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
        if DEMO in runner.manifest["weights"]["file"]:
            console(stderr=True).print(styled("note:", "yellow", "this export holds the demo-tiny weights (synthetic "
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
    con = console(stderr=True)
    con.print(f"batch {kind}: {len(jobs)} photos, backend {runner.describe() if runner else 'classical'}, "
              f"{workers} worker{'s' if workers > 1 else ''}, batch size {batch_size}")
    drive(run_batch(task, jobs, runner=runner, workers=workers, batch_size=batch_size, overwrite=overwrite),
          len(jobs), "batch", "img/s", lambda o: o.status == "done", f"batch {kind} ({backend}) → {out}", not_images)


def _batch_on_ray(task, jobs, runner, exports, weights, providers, batch_size, overwrite, not_images, out, address,
                  cpus_per_task, gpus_per_actor, cpus_per_actor) -> None:
    """`mgpe batch --engine ray`: the run on Ray Data, the local engine's summary, then the throughput."""
    import time

    import ray

    from ..batch.ray import RayOptions, RunnerSpec, connect, run_ray_batch

    spec = RunnerSpec(task.backend, exports=exports, weights=weights, providers=providers) if runner else None
    options = RayOptions(address=address, cpus_per_task=cpus_per_task, gpus_per_actor=gpus_per_actor,
                         cpus_per_actor=cpus_per_actor, batch_size=batch_size)
    con = console(stderr=True)
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
        say = lambda line: console(stderr=True).print(line, soft_wrap=True)  # noqa: E731
        outcomes = run_ray_batch(task, jobs, options, runner=spec, overwrite=overwrite, note=say)
        drive(counted(outcomes), len(jobs), "batch",
              "img/s", lambda o: o.status == "done", f"batch {task.kind} ({task.backend}) → {out}", not_images)
    finally:
        took = time.perf_counter() - start
        con.print(f"throughput: {done[0]} photos edited in {took:.1f} s, {done[0] / max(took, 1e-9):.2f} photos/s")
        if started:
            ray.shutdown()
