"""`mgpe train ...`: the parser now; the paper's networks with issue #4."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import console, fail, styled

train_app = typer.Typer(help="Train the paper's networks or the parser.", no_args_is_help=False,
                        invoke_without_command=True, rich_markup_mode="rich")


def _workers_option():
    return typer.Option(None, "--workers", min=0, help="Data-loading processes that build batches ahead of the "
                                                       "GPU (default: none on CPU, up to 8 with a GPU).")


def _precision_option():
    return typer.Option("auto", "--precision", help="auto: bf16 autocast on CUDA, fp32 elsewhere; bf16: autocast "
                                                    "on any device (on a CPU fast only with bf16 instructions, e.g. "
                                                    "AVX512-BF16 or AMX); fp32.")


def _amp(precision: str) -> bool | None:
    """--precision as the trainers' `amp` argument (None: the device decides)."""
    choices = {"auto": None, "bf16": True, "fp32": False}
    if precision not in choices:
        fail(f"--precision {precision!r}: expected auto, bf16 or fp32")
    return choices[precision]


def _minutes_option():
    return typer.Option(0.0, "--minutes", min=0, help="Stop after the first step that ends this many minutes after "
                                                      "the command started, checkpointed (--resume continues; the "
                                                      "learning-rate schedule still runs to --steps). 0: no limit. "
                                                      "One process.")


def _deadline(minutes: float, gpus: int, nproc: int) -> float | None:
    import time

    if minutes <= 0:
        return None
    if max(gpus, nproc) > 1:
        fail("--minutes stops one process: leave it out with --gpus/--nproc")
    return time.monotonic() + minutes * 60


def _said_if_stopped(con, step: int, steps: int, minutes: float) -> None:
    if step < steps:
        con.print(f"stopped at the {minutes:g}-minute limit at step {step} of {steps}; --resume continues")


def _gpus_option():
    return typer.Option(0, "--gpus", min=0, help="Train on this many GPUs of this machine, one process each "
                                                 "(DistributedDataParallel; the batch is split between them). "
                                                 "Several machines: torchrun, see docs/training.md.")


def _nproc_option():
    return typer.Option(0, "--nproc", min=0, help="Train as this many processes on --device (on CPU: gloo, "
                                                  "for testing the multi-GPU path).")


def _launched(gpus: int, nproc: int, device: str, checkpoint: Path, batch: int) -> bool:
    """With --gpus/--nproc above 1 (and not already a rank of a run): run this command as that many processes,
    then end as the run ended. False: train here."""
    import sys

    from ..train.ddp import World, share
    from ..train.launch import relaunch

    if max(gpus, nproc) <= 1 or World.from_env().active:
        return False
    share(batch, World(0, max(gpus, nproc)))  # a batch that does not split: one error here, not one per rank
    outcome = relaunch(sys.argv[1:], gpus=gpus, nproc=nproc, device=device, checkpoint=checkpoint)
    if outcome.code and outcome.message:
        fail(outcome.message, outcome.code)
    if outcome.code:
        raise typer.Exit(outcome.code)
    return True


def _run_console():
    """The run's stderr console: silent on ranks other than 0 of a multi-process run (rank 0 speaks for it)."""
    from ..train.ddp import World

    con = console(stderr=True)
    con.quiet = not World.from_env().main
    return con


def _parse_sets(pairs: list[str]) -> dict:
    """--set key=value (value parsed as JSON when it can be: numbers, true/false)."""
    import json

    out = {}
    for pair in pairs:
        if "=" not in pair:
            fail(f"--set {pair!r}: expected key=value")
        key, value = pair.split("=", 1)
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


@train_app.callback()
def train_main(
    ctx: typer.Context,
    config: str = typer.Option("tiny", "--config", help="tiny (64², CPU), small (128²), lean (256², our design, "
                               "4.3 M parameters), paper (256², the authors' networks and losses, 163.6 M) or a JSON "
                               "file."),
    data: Optional[str] = typer.Option(None, "--data", help="Aligned images + masks: a folder with images/ and "
                                                           "masks/, a CelebAMask-HQ folder, a travel pack or one of "
                                                           "its parts (`mgpe train pack`), or synthetic:N."),
    masks: Optional[str] = typer.Option(None, "--masks", help="Mask folder paired with --data by file name."),
    labels: str = typer.Option("canonical", "--labels", help="Label order of the masks: canonical, helen, bisenet."),
    out: Optional[str] = typer.Option(None, "--out", help="Run folder (checkpoint, weights + card, samples, metrics)."),
    steps: int = typer.Option(1000, "--steps", min=1, help="Total steps (a resumed run continues up to it)."),
    parser_weights: Optional[str] = typer.Option(None, "--parser-weights",
                                                 help="Frozen parser P_F for the parsing loss (from `mgpe train parser`; "
                                                      "default: the default parser's weights, models/parser-real)."),
    sets: list[str] = typer.Option([], "--set", help="Override a config value, e.g. --set lambda_gp=0 --set batch=2."),
    perceptual_weights: Optional[str] = typer.Option(None, "--perceptual-weights",
                                                     help="VGG19 weights for the perceptual loss (torchvision's "
                                                          "vgg19-dcbb9e9d.pth; default: torch's hub cache). Never "
                                                          "downloaded: without them the run trains without that loss "
                                                          "and its card says so."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA if present), cpu, cuda, cuda:N."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile every network the training step runs."),
    graphs: bool = typer.Option(False, "--graphs", help="--compile with CUDA graphs (mode reduce-overhead): fewer "
                                                        "kernel launches; one CUDA GPU."),
    workers: Optional[int] = _workers_option(),
    precision: str = _precision_option(),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoint.safetensors."),
    minutes: float = _minutes_option(),
    compact: bool = typer.Option(False, "--compact-checkpoint", help="Checkpoints with Adam's moments in 8 bits "
                                                                    "(about half the bytes; the run continues from "
                                                                    "what it stored, so a resume is exact). For "
                                                                    "runs whose checkpoint must travel."),
    gpus: int = _gpus_option(),
    nproc: int = _nproc_option(),
):
    """Train the paper's framework (`mgpe train --config tiny --data DIR --out runs/NAME`) or, with the
    `parser` subcommand, the U-Net parser."""
    if ctx.invoked_subcommand is not None:
        return
    if data is None or out is None:
        fail("`mgpe train` needs --data and --out (see `mgpe train --help`)")
    amp = _amp(precision)
    deadline = _deadline(minutes, gpus, nproc)
    if compact and max(gpus, nproc) > 1:
        fail("--compact-checkpoint keeps one process's moments as stored: leave it out with --gpus/--nproc")
    from ..data.sets import open_dataset
    from ..nets.config import load_config
    from ..train.gan import CHECKPOINT, WEIGHTS, GANTrainer, run_gan_training

    con = _run_console()
    out_dir = Path(out)
    _refuse_overwrite(out_dir / CHECKPOINT, resume)
    cfg = load_config(config, **_parse_sets(sets))
    if parser_weights is None and cfg.lambda_gp > 0:
        from ..weights import default_parser

        found = default_parser()
        if found is None:
            fail("the parsing loss (lambda_gp > 0) needs a frozen parser and none was found: pass --parser-weights "
                 "FILE (train one with `mgpe train parser`) or --set lambda_gp=0")
        parser_weights = str(found)
        con.print(f"parsing loss: the default parser {parser_weights}")
    if graphs and max(gpus, nproc) > 1:
        fail("--graphs (CUDA graphs) runs on one GPU: leave it out with --gpus/--nproc, or use --compile")
    dataset = open_dataset(data, masks, labels, cfg.resolution)
    if _launched(gpus, nproc, device, out_dir / CHECKPOINT, cfg.batch):
        _record_command(out_dir / (Path(WEIGHTS).stem + ".json"), skip=2)
        return
    trainer = GANTrainer(dataset, out_dir, cfg, parser_weights=parser_weights, device=device, compile=compile_,
                         graphs=graphs, warn=lambda m: con.print(styled("warning:", "yellow", m)), amp=amp,
                         compact=compact)
    if cfg.lambda_vgg > 0:
        said = trainer.use_perceptual(perceptual_weights)
        con.print(styled("perceptual loss:", "yellow" if trainer.vgg is None else "", said))
    description = dataset.describe()
    if not _resume(trainer, resume, steps, out_dir / CHECKPOINT, con, description):
        return
    con.print(f"data: {description}; config: {config} ({cfg.resolution}²); device: {trainer.device}"
              f"{' (bf16 autocast)' if trainer.amp else ''}")

    def info(losses: dict) -> str:
        return " ".join(f"{k} {losses[k]:.3f}" for k in ("local", "global", "gp", "d") if k in losses)

    _with_progress("train", trainer, steps, con, info,
                   lambda on_step: run_gan_training(trainer, steps, data_description=description, on_step=on_step,
                                                    workers=workers, deadline=deadline))
    if trainer.world.main:
        _record_command(out_dir / (Path(WEIGHTS).stem + ".json"), skip=2)
        _said_if_stopped(con, trainer.step, steps, minutes)
        console().print(f"wrote {out_dir / WEIGHTS} (+ model card) at step {trainer.step}; samples in "
                         f"{out_dir / 'samples'}")


def _refuse_overwrite(checkpoint: Path, resume: bool) -> None:
    if checkpoint.exists() and not resume:
        fail(f"{checkpoint.parent}: holds a run already (use --resume to continue it, or another --out)")


def _resume(trainer, resume: bool, steps: int, checkpoint: Path, con, data_description: str) -> bool:
    """Resume when asked (the same settings and data only); False when the run is already at `steps`."""
    if resume and trainer.resume(data_description):
        was = getattr(trainer, "resumed_world_size", 1)
        now = f" (written by {was} processes, continued by {trainer.world.size})" if was != trainer.world.size else ""
        con.print(f"resumed {checkpoint} at step {trainer.step}{now}")
    if trainer.step >= steps:
        con.print(f"already at step {trainer.step} ≥ --steps {steps}: nothing to do")
        return False
    return True


def _with_progress(title: str, trainer, steps: int, con, info, run) -> None:
    """Run `run(on_step)` under a rich progress bar showing `info(losses)` and it/s."""
    import time

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn(f"[bold]{title}[/]"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=con) as progress:
        task = progress.add_task(title, total=steps, completed=trainer.step, info="")
        start, first = time.perf_counter(), trainer.step

        def on_step(step: int, losses) -> None:
            rate = (step - first) / max(time.perf_counter() - start, 1e-9)
            progress.update(task, completed=step, info=f"{info(losses)} · {rate:.2f} it/s")

        run(on_step)
    if trainer.world.main and getattr(trainer, "times", None) is not None:
        con.print(f"time: {trainer.times.summary()}")


def _command_line(skip: int) -> str | None:
    """This process's command line as `mgpe ...`, its first `skip` words kept as they are; None without one."""
    import shlex
    import sys

    args = sys.argv[skip:]
    return "mgpe " + " ".join(sys.argv[1:skip]) + " " + " ".join(shlex.quote(a) for a in args) if args else None


def _record_command(card, skip: int) -> None:
    """Put the command line that produced a model card into it."""
    from ..io import read_json, write_json

    command = _command_line(skip)
    if command:
        write_json(card, {**read_json(card), "command": command})


@train_app.command("parser")
def train_parser_cmd(
    data: list[str] = typer.Option(..., "--data", help="Repeatable. Folder with images/ + masks/ (or labels/), an "
                                                       "image folder with --masks, a CelebAMask-HQ folder, "
                                                       "synthetic:N, or photos with hand-made hair masks "
                                                       "(images/ + hair/, the lfw-hair layout: pseudo-labelled, "
                                                       "held-out people left out), or a travel pack or one of its "
                                                       "parts (`mgpe train pack`)."),
    out: str = typer.Option(..., "--out", help="Run folder: checkpoint, parser-unet.safetensors + card, metrics."),
    masks: Optional[str] = typer.Option(None, "--masks", help="Mask folder paired with --data by file name."),
    labels: str = typer.Option("canonical", "--labels", help="Label order of the masks: canonical, helen, bisenet, "
                                                            "or celebamask: a folder of portraits with images/ + "
                                                            "masks/ in CelebAMask-HQ's order and sides (e.g. "
                                                            "celebamask-mini), aligned with our aligner once into "
                                                            "a cache, the held-out split left out."),
    hair_labels: str = typer.Option("pseudo", "--hair-labels", help="What hair folders teach: pseudo (hair from "
                                                                    "the masks, every other class pseudo-labelled) "
                                                                    "or hair-only (hair vs not hair, nothing finer)."),
    balance: bool = typer.Option(False, "--balance", help="Draw every --data equally often, whatever its size."),
    pseudo_labels: Optional[str] = typer.Option(None, "--pseudo-labels", help="Where the pseudo-labels of hair "
                                                "folders are cached, one subfolder each (default OUT/pseudo-labels)."),
    steps: int = typer.Option(2000, "--steps", min=1, help="Total steps (a resumed run continues up to it)."),
    size: int = typer.Option(128, "--size", help="Training resolution (divisible by 16)."),
    base: int = typer.Option(16, "--base", min=4, help="U-Net width at full resolution."),
    batch: int = typer.Option(8, "--batch", min=1),
    lr: float = typer.Option(1e-3, "--lr"),
    decay_steps: int = typer.Option(0, "--decay-steps", min=0, help="Cosine learning-rate decay to 1% at this "
                                                                     "step (0: constant)."),
    augment: str = typer.Option("wild", "--augment", help="wild: random zoom, rotation, shift, colour, greyscale, "
                                                          "blur, JPEG, noise, occluders; none: mirroring only."),
    init: Optional[str] = typer.Option(None, "--init", help="Start from these parser weights (fine-tuning, "
                                                              "a fresh optimiser); a narrower U-Net is widened to "
                                                              "--base first, computing the same masks."),
    seed: int = typer.Option(0, "--seed", min=0),
    every: int = typer.Option(100, "--checkpoint-every", min=1),
    device: str = typer.Option("auto", "--device", help="auto (CUDA if present), cpu, cuda, cuda:N."),
    workers: Optional[int] = _workers_option(),
    precision: str = _precision_option(),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoint.safetensors."),
    minutes: float = _minutes_option(),
    gpus: int = _gpus_option(),
    nproc: int = _nproc_option(),
):
    """Train the U-Net parser P_F (class-weighted cross-entropy); writes weights the `unet` parser loads."""
    import json

    amp = _amp(precision)
    deadline = _deadline(minutes, gpus, nproc)

    from ..data.sets import Mixture, open_dataset
    from ..train.parser import (
        CHECKPOINT,
        WEIGHTS,
        ParserTrainConfig,
        ParserTrainer,
        run_training,
    )
    from ..data.pack import is_pack, is_pack_part
    from ..train.pseudo import is_celebamask_folder, is_hair_folder

    con = _run_console()
    out_dir = Path(out)
    if hair_labels not in ("pseudo", "hair-only"):
        raise typer.BadParameter(f"must be pseudo or hair-only, not {hair_labels!r}", param_hint="--hair-labels")
    _refuse_overwrite(out_dir / CHECKPOINT, resume)
    cache_root = Path(pseudo_labels) if pseudo_labels else out_dir / "pseudo-labels"

    def part(d: str):
        if is_pack(Path(d)) or is_pack_part(Path(d)):
            return _packed(Path(d), hair_labels == "hair-only")
        if is_hair_folder(Path(d)):
            return _cached_photos(Path(d), cache_root, con, "pseudo", hair_labels == "hair-only")
        if labels == "celebamask":
            if not is_celebamask_folder(Path(d)):
                raise typer.BadParameter(f"{d}: --labels celebamask needs images/ and masks/ inside", param_hint="--data")
            return _cached_photos(Path(d), cache_root, con, "celebamask")
        return open_dataset(d, masks, labels, size)

    parts = [p for d in data for p in _flat(part(d))]  # labelled and aligned once, before any launch
    dataset = parts[0] if len(parts) == 1 else Mixture(parts, balanced=balance)
    if _launched(gpus, nproc, device, out_dir / CHECKPOINT, batch):
        _record_command(out_dir / (Path(WEIGHTS).stem + ".json"), skip=3)
        return
    config = ParserTrainConfig(size=size, base=base, batch=batch, lr=lr, seed=seed, checkpoint_every=every,
                               augment=augment, decay_steps=decay_steps)
    trainer = ParserTrainer(dataset, out_dir, config, device=device, init=None if resume else init,
                            warn=lambda m: con.print(styled("warning:", "yellow", m)), amp=amp)
    description = dataset.describe()
    if not _resume(trainer, resume, steps, out_dir / CHECKPOINT, con, description):
        return
    con.print(f"data: {description}; device: {trainer.device}{' (bf16 autocast)' if trainer.amp else ''}; "
              f"class weights: {json.dumps([round(float(w), 2) for w in trainer.weights])}")
    _with_progress("train parser", trainer, steps, con, lambda loss: f"loss {loss:.3f}",
                   lambda on_step: run_training(trainer, steps, data_description=description, on_step=on_step,
                                               workers=workers, deadline=deadline))
    if not trainer.world.main:
        return
    card = out_dir / (Path(WEIGHTS).stem + ".json")
    _record_command(card, skip=3)
    _said_if_stopped(con, trainer.step, steps, minutes)
    console().print(f"wrote {out_dir / WEIGHTS} (+ {card.name}) at step {trainer.step}; use it with "
                     f"`--parser unet` after copying it to models/ or setting MGPE_MODELS={out_dir}")


@train_app.command("calibrate")
def train_calibrate_cmd(
    weights: str = typer.Option(..., "--weights", help="Parser weights to calibrate (a parser-unet.safetensors)."),
    data: list[str] = typer.Option(..., "--data", help="Repeatable. Portraits with hand-made masks of every class: "
                                                       "a CelebAMask-HQ folder (images/ + masks/, with --labels "
                                                       "celebamask) or a travel pack's part of that kind; the "
                                                       "training split alone is read."),
    out: str = typer.Option(..., "--out", help="Folder for the calibrated parser-unet.safetensors + card."),
    labels: str = typer.Option("celebamask", "--labels", help="What an images/ + masks/ folder holds: celebamask."),
    pseudo_labels: Optional[str] = typer.Option(None, "--pseudo-labels", help="Where the aligned label caches "
                                                "are (built here when missing; default OUT/pseudo-labels)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Which pixels are drawn from each view."),
):
    """Fit one logit offset per class on the training split (pixel accuracy + mean F1; sides tied) and write the
    weights with the offsets in their output layer: undoes the class-weighted loss's pull towards rare classes."""
    import numpy as np
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    from ..data.pack import is_pack, is_pack_part
    from ..io import read_json, write_json
    from ..labels import LABELS
    from ..train.calibrate import collect, fit_offsets, scores, with_offsets
    from ..train.pseudo import is_celebamask_folder
    from ..weights import PARSER_WEIGHTS, card_path, load_unet, read_safetensors, write_safetensors

    con = _run_console()
    if labels != "celebamask":
        raise typer.BadParameter(f"must be celebamask, not {labels!r}", param_hint="--labels")
    out_dir = Path(out)
    target = out_dir / PARSER_WEIGHTS
    if target.resolve() == Path(weights).resolve():
        fail(f"{target}: --out would overwrite the weights being calibrated; pick another folder")
    cache_root = Path(pseudo_labels) if pseudo_labels else out_dir / "pseudo-labels"
    parts = []
    for d in data:
        root = Path(d)
        if is_pack(root) or is_pack_part(root):
            parts += [p for p in _packed(root, False) if p.kind == "celebamask"]
        elif is_celebamask_folder(root):
            parts.append(_cached_photos(root, cache_root, con, "celebamask"))
        else:
            fail(f"{root}: expected images/ + masks/ (celebamask) or a pack with a celebamask part")
    if not parts:
        fail(f"{', '.join(data)}: no part with masks of every class")
    model, size = load_unet(weights)
    pieces = []
    with Progress(TextColumn("[bold]parsing[/]"), BarColumn(), MofNCompleteColumn(), console=con) as progress:
        for part in parts:
            task = progress.add_task("views", total=len(part))
            pieces.append(collect(model, part, size, seed=seed,
                                  progress=lambda done, total, t=task: progress.update(t, completed=done)))
    logits = np.concatenate([p[0] for p in pieces], 1)
    truth = np.concatenate([p[1] for p in pieces])
    before = scores(truth, logits.argmax(0))
    con.print(f"fitting offsets on {truth.size:,} pixels of {sum(len(p) for p in parts)} photos")
    offsets = fit_offsets(logits, truth)
    after = scores(truth, (logits + offsets[:, None]).argmax(0))
    state, meta = read_safetensors(weights, "unet")
    write_safetensors(target, with_offsets(state, offsets), {**meta, "calibrated": "1"})
    card = read_json(card_path(weights)) if card_path(weights).is_file() else {}
    figures = lambda s: {"accuracy": round(s[0], 4), "mean_f1": round(s[1], 4)}  # noqa: E731
    card["calibration"] = {
        "offsets": {name: round(float(v), 2) for name, v in zip(LABELS, offsets)},
        "data": "; ".join(p.describe() for p in parts) + " (the aligned crop and the wider view of each)",
        "pixels": int(truth.size), "seed": seed, "from": str(weights),
        "on_those_pixels": {"before": figures(before), "after": figures(after)},
        **({"command": _command_line(3)} if _command_line(3) else {}),
    }
    write_json(card_path(target), card)
    table = Table("class", "offset", title="added to the logits")
    for name, value in zip(LABELS, offsets):
        table.add_row(name, f"{value:+.1f}")
    console().print(table)
    console().print(f"training pixels: accuracy {before[0]:.4f} -> {after[0]:.4f}, mean F1 {before[1]:.4f} -> "
                    f"{after[1]:.4f}; wrote {target} (+ {card_path(target).name})")


def _cached_photos(root: Path, cache_root: Path, con, kind: str, hair_only: bool = False):
    """The training split of a hair folder (pseudo-labelled) or a celebamask folder (aligned), filling what its
    cache lacks first (progress bar)."""
    import os

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from ..train.pseudo import CachedPhotos, LabelCache, build_cache, cache_is_complete

    folder = cache_root / (root.resolve().name + ("" if kind == "pseudo" else f".{kind}"))
    if not cache_is_complete(root, folder, kind):
        what = "pseudo-labelling" if kind == "pseudo" else "aligning"
        con.print(f"{what} {root} into {folder} (once; later runs reuse it)")
        with Progress(TextColumn(f"[bold]{what}[/]"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=con) as progress:
            task = progress.add_task("labels", total=None)
            build_cache(root, folder, kind=kind, workers=max(1, min(8, os.cpu_count() or 1)),
                        progress=lambda done, total: progress.update(task, completed=done, total=total),
                        warn=lambda m: con.print(styled("skipped:", "yellow", m)))
    return CachedPhotos(LabelCache.open(root, folder), "train", hair_only=hair_only)


def _flat(dataset) -> list:
    """A pack's parts count as separate --data (for --balance)."""
    return list(dataset) if isinstance(dataset, list) else [dataset]


def _packed(root: Path, hair_only: bool) -> list:
    """The parts of a travel pack (or one part) as parser training data; hair-only applies to hair folders' parts."""
    from ..data.pack import PackedPhotos, pack_parts

    parts = [PackedPhotos(p) for p in pack_parts(root)]
    return [PackedPhotos(p.root, hair_only=True) if hair_only and p.kind == "pseudo" else p for p in parts]


TERMS = {
    "celebamask": "CelebAMask-HQ (Lee et al., CVPR 2020): non-commercial research and educational use only",
    "pseudo": "LFW and LFW Part Labels (University of Massachusetts Amherst): for research use",
}


@train_app.command("pack")
def train_pack_cmd(
    data: list[str] = typer.Option(..., "--data", help="Repeatable. Photos with hand-made hair masks (images/ + "
                                                       "hair/, the lfw-hair layout) or, with --labels celebamask, "
                                                       "portraits with images/ + masks/ (celebamask-mini)."),
    out: str = typer.Option(..., "--out", help="The pack folder (one subfolder per --data, pack.json, README.md)."),
    labels: str = typer.Option("celebamask", "--labels", help="What an images/ + masks/ folder holds: celebamask "
                                                             "(its order and sides)."),
    pseudo_labels: Optional[str] = typer.Option(None, "--pseudo-labels", help="Where the label caches are (built "
                                                "here when missing; default OUT/../caches)."),
    quality: int = typer.Option(85, "--quality", min=50, max=100, help="JPEG quality of the stored crops."),
    aligned: bool = typer.Option(False, "--aligned", help="Keep only the aligned 256² crops and their masks (what "
                                                         "`mgpe train` reads; about a third of the bytes), not the "
                                                         "wider context crops the parser trains on."),
):
    """Pack the training split of real-photo data (aligned crops + labels, the held-out split left out) into one
    small folder, for `mgpe train parser --data PACK` and `mgpe train --data PACK/PART` on a machine without the
    photos (e.g. a lent GPU: see benchmarks/gpu_parser.sh)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from ..data.pack import write_pack_file, write_part
    from ..train.pseudo import CONTEXT_SIZE, SIZE, is_celebamask_folder, is_hair_folder

    con = console(stderr=True)
    out_dir = Path(out)
    cache_root = Path(pseudo_labels) if pseudo_labels else out_dir.parent / "caches"
    if labels != "celebamask":
        raise typer.BadParameter(f"must be celebamask, not {labels!r}", param_hint="--labels")
    for d in data:
        root = Path(d)
        if is_hair_folder(root):
            kind = "pseudo"
        elif is_celebamask_folder(root):
            kind = "celebamask"
        else:
            fail(f"{root}: expected images/ + hair/ (hair masks) or images/ + masks/ (celebamask)")
        photos = _cached_photos(root, cache_root, con, kind)
        name = root.resolve().name
        with Progress(TextColumn(f"[bold]packing {name}[/]"), BarColumn(), MofNCompleteColumn(),
                      console=con) as progress:
            task = progress.add_task("pack", total=len(photos.names))
            write_part(photos.cache, photos.names, out_dir / name, size=SIZE, context_size=CONTEXT_SIZE,
                       source=photos.describe(), terms=TERMS[kind],
                       quality=quality, aligned=aligned, progress=lambda done, total: progress.update(task, completed=done))
    parts = write_pack_file(out_dir)
    total = sum(f.stat().st_size for f in out_dir.rglob("*") if f.is_file())
    console().print(f"wrote {out_dir}: {len(parts)} part(s) ({', '.join(parts)}), {total / 2 ** 20:.1f} MiB")
