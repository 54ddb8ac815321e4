"""`mgpe labels`, `plugins`, `version`: what mgpe knows and has."""
from __future__ import annotations

import sys
from typing import Optional

import typer

from ..errors import MgpeError
from .common import app, console, fail, styled


@app.command("labels")
def labels_cmd(
    resolution: int = typer.Option(256, "--resolution", "-r", min=16, help="Show component crop sizes at this resolution."),
    fmt: str = typer.Option("table", "--format", help="table, json or markdown."),
):
    """The canonical 19 labels with colours, their Helen and BiSeNet indices, the paper's components, and the
    side convention of each mask format `mgpe parse --format` writes."""
    import numpy as np

    from ..labels import (
        BISENET_LABELS,
        COLORS,
        COMPONENTS,
        DESCRIPTIONS,
        FORMAT_LABELS,
        FORMAT_SIDES,
        HELEN_FALLBACK,
        HELEN_TO_CANONICAL,
        LABEL_INDEX,
        LABELS,
        MASK_FORMATS,
        to_format,
    )

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
    con = console()
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
    con = console()
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
