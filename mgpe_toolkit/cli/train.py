"""`mgpe train ...`: the parser now; the paper's networks with issue #4."""
from __future__ import annotations

from typing import Optional

import typer

from .app import _console, fail

train_app = typer.Typer(help="Train the paper's networks or the parser.", no_args_is_help=False,
                        invoke_without_command=True, rich_markup_mode="rich")


@train_app.callback()
def train_main(ctx: typer.Context):
    """Train the paper's networks (`mgpe train --config tiny ...`, issue #4) or the parser (`mgpe train parser`)."""
    if ctx.invoked_subcommand is None:
        fail("`mgpe train` for the paper's networks is not implemented yet (planned in issue #4); "
             "`mgpe train parser` is ready")


@train_app.command("parser")
def train_parser_cmd(
    data: str = typer.Option(..., "--data", help="Folder with images/ + masks/ (or labels/), an image folder with "
                                                 "--masks, or synthetic:N."),
    out: str = typer.Option(..., "--out", help="Run folder: checkpoint, parser-unet.safetensors + card, metrics."),
    masks: Optional[str] = typer.Option(None, "--masks", help="Mask folder paired with --data by file name."),
    labels: str = typer.Option("canonical", "--labels", help="Label order of the masks: canonical, helen, bisenet."),
    steps: int = typer.Option(2000, "--steps", min=1, help="Total steps (a resumed run continues up to it)."),
    size: int = typer.Option(128, "--size", help="Training resolution (divisible by 16)."),
    base: int = typer.Option(16, "--base", min=4, help="U-Net width at full resolution."),
    batch: int = typer.Option(8, "--batch", min=1),
    lr: float = typer.Option(1e-3, "--lr"),
    seed: int = typer.Option(0, "--seed"),
    every: int = typer.Option(100, "--checkpoint-every", min=1),
    device: str = typer.Option("auto", "--device", help="auto (CUDA if present), cpu, cuda, cuda:N."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoint.safetensors."),
):
    """Train the U-Net parser P_F (class-weighted cross-entropy); writes weights the `unet` parser loads."""
    import json
    import shlex
    import sys
    from pathlib import Path

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..train.data import open_dataset
    from ..train.parser import CHECKPOINT, WEIGHTS, ParserTrainConfig, ParserTrainer, run_training

    con = _console(stderr=True)
    out_dir = Path(out)
    if (out_dir / CHECKPOINT).exists() and not resume:
        fail(f"{out_dir}: holds a run already (use --resume to continue it, or another --out)")
    dataset = open_dataset(data, masks, labels, size)
    config = ParserTrainConfig(size=size, base=base, batch=batch, lr=lr, seed=seed, checkpoint_every=every)
    trainer = ParserTrainer(dataset, out_dir, config, device=device, warn=lambda m: con.print(f"[yellow]warning:[/] {m}"))
    if resume and trainer.resume():
        con.print(f"resumed {out_dir / CHECKPOINT} at step {trainer.step}")
    if trainer.step >= steps:
        con.print(f"already at step {trainer.step} ≥ --steps {steps}: nothing to do")
        return
    description = dataset.describe()
    con.print(f"data: {description}; device: {trainer.device}; class weights: "
              f"{json.dumps([round(float(w), 2) for w in trainer.weights])}")
    with Progress(TextColumn("[bold]train parser[/]"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=con) as progress:
        task = progress.add_task("train", total=steps, completed=trainer.step, info="")
        import time
        start, first = time.perf_counter(), trainer.step

        def on_step(step: int, loss: float) -> None:
            rate = (step - first) / max(time.perf_counter() - start, 1e-9)
            progress.update(task, completed=step, info=f"loss {loss:.3f} · {rate:.1f} it/s")

        run_training(trainer, steps, data_description=description, on_step=on_step)
    command = "mgpe train parser " + " ".join(shlex.quote(a) for a in sys.argv[3:]) if len(sys.argv) > 3 else ""
    card = out_dir / (Path(WEIGHTS).stem + ".json")
    if command:
        from ..io import read_json, write_json

        write_json(card, {**read_json(card), "command": command})
    _console().print(f"wrote {out_dir / WEIGHTS} (+ {card.name}) at step {trainer.step}; use it with "
                     f"`--parser unet` after copying it to models/ or setting MGPE_MODELS={out_dir}")
