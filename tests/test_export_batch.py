"""ONNX export (checker, manifest, torch parity, dynamic batch) and `mgpe batch` over folders."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mgpe_toolkit.export.onnx import export_onnx, parity
from mgpe_toolkit.io import read_image, write_image
from mgpe_toolkit.nets.config import PRESETS
from mgpe_toolkit.nets.framework import MaskGuidedFramework
from mgpe_toolkit.nets.unet import UNet, UNetConfig
from mgpe_toolkit.weights import save_generator
from mgpe_toolkit.weights import save_unet
from run_cli import mgpe



@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("w")
    torch.manual_seed(1)
    save_generator(MaskGuidedFramework(PRESETS["tiny"]), root / "mgpe-gan.safetensors", step=0)
    unet = UNet(UNetConfig(base=8)).eval()
    save_unet(unet, root / "parser-unet.safetensors", step=0, config={"size": 64})
    return root


@pytest.fixture(scope="module")
def exported(weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("exports")
    manifest = export_onnx(weights / "mgpe-gan.safetensors", out, parser_weights=weights / "parser-unet.safetensors")
    return manifest


def test_manifest_lists_every_graph_with_a_dynamic_batch_axis(exported, weights):
    man = json.loads(Path(exported).read_text())
    assert man["opset"] == 17 and man["precision"] == "fp32" and man["resolution"] == 64
    assert set(man["graphs"]) == {"encoders", "generator", "fuser", "parser"}
    gen = {i["name"]: i for i in man["graphs"]["generator"]["inputs"]}
    assert gen["centres"]["shape"] == ["batch", 3, 2] and gen["mask_onehot"]["shape"] == ["batch", 19, 64, 64]
    for g in man["graphs"].values():
        assert all(i["shape"][0] == "batch" for i in g["inputs"] + g["outputs"])
        assert (Path(exported).parent / g["file"]).is_file()
    assert man["config"]["resolution"] == 64 and len(man["weights"]["sha256_16"]) == 16


def test_onnxruntime_matches_torch_in_fp32_at_another_batch_size(exported, weights):
    diffs = parity(weights / "mgpe-gan.safetensors", exported, parser_weights=weights / "parser-unet.safetensors",
                   batch=3)
    assert set(diffs) == {"encoders", "generator", "fuser", "parser"}
    assert max(diffs.values()) <= 1e-4, diffs


def test_fp16_export_stays_close(weights, tmp_path):
    manifest = export_onnx(weights / "mgpe-gan.safetensors", tmp_path, precision="fp16")
    diffs = parity(weights / "mgpe-gan.safetensors", manifest)
    assert max(diffs.values()) < 2e-2, diffs  # measured ~3e-3 with random tiny weights


def test_onnx_runner_matches_torch_runner_on_real_inputs(exported, weights):
    from mgpe_toolkit.data.synthetic import synthetic_portrait
    from mgpe_toolkit.export.runtime import OnnxRunner, TorchRunner
    from mgpe_toolkit.nets.inputs import edit_inputs

    faces = [synthetic_portrait(i, 64) for i in range(4)]
    masks = [p.mask for p in faces]
    crops, onehot, centres, removed, target = edit_inputs([p.image for p in faces], masks, masks, 64)
    results = []
    for runner in (OnnxRunner(Path(exported).parent, "CPUExecutionProvider"), TorchRunner(weights / "mgpe-gan.safetensors", "cpu")):
        results.append(runner.render(runner.encode(crops), onehot, centres, target, removed))
    assert results[0].shape == (4, 3, 64, 64) and np.abs(results[0] - results[1]).max() < 1e-4


def test_cli_export_and_errors(weights, tmp_path):
    proc = mgpe("export", "onnx", "--weights", weights / "mgpe-gan.safetensors", "--out", tmp_path / "e")
    assert proc.returncode == 0, proc.stderr
    assert "generator" in proc.stdout and (tmp_path / "e" / "manifest.json").is_file()
    proc = mgpe("export", "onnx", "--weights", tmp_path / "nope.safetensors", "--out", tmp_path / "e2")
    assert proc.returncode == 2 and "no such file" in proc.stderr


@pytest.fixture(scope="module")
def photos(tmp_path_factory, astronaut):
    import matplotlib.cbook
    import skimage.data

    root = tmp_path_factory.mktemp("photos")
    write_image(root / "astro.jpg", astronaut)
    write_image(root / "people" / "grace.png",
                read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    write_image(root / "coffee.png", skimage.data.coffee())
    (root / "broken.jpg").write_bytes(b"\xff\xd8 broken")
    return root


def test_batch_classical_edits_a_folder_resumes_and_reports(photos, tmp_path, astronaut):
    out = tmp_path / "out"
    proc = mgpe("batch", photos, out, "-m", "hair->skin@forehead", "--workers", "2")
    assert proc.returncode == 1, proc.stderr
    assert "coffee.png: no face found" in proc.stdout and "broken.jpg" in proc.stdout
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["astro.png", "people/grace.png"]
    result, original = read_image(out / "astro.png"), read_image(photos / "astro.jpg")
    assert result.shape == original.shape and (result != original).any()
    assert (result[400:] == original[400:]).all()  # the suit, far from the face, is untouched
    again = mgpe("batch", photos, out, "-m", "hair->skin@forehead", "--workers", "1")
    assert again.returncode == 1 and "│    0 │               2 │" in again.stdout
    proc = mgpe("batch", photos, tmp_path / "o2", "--swap-from", photos / "astro.jpg", "--workers", "1")
    assert proc.returncode == 1 and (tmp_path / "o2" / "people" / "grace.png").is_file()


def test_batch_onnx_backend_runs_the_exported_graphs(photos, tmp_path, exported, astronaut):
    out = tmp_path / "out"
    proc = mgpe("batch", photos, out, "-m", "grow:eyes:1", "--backend", "onnx", "--exports",
                Path(exported).parent, "--workers", "1", "--batch-size", "2", "--aligned-out")
    assert proc.returncode == 1, proc.stderr  # coffee and broken still fail, the two faces do not
    assert "onnxruntime (CPUExecutionProvider" in proc.stderr
    result, original = read_image(out / "astro.png"), read_image(photos / "astro.jpg")
    assert result.shape == original.shape and (result[400:] == original[400:]).all()
    assert read_image(out / "astro.aligned.png").shape == (256, 256, 3)
    proc = mgpe("batch", photos, tmp_path / "o3", "--transfer", "hair", "--from", photos / "astro.jpg",
                "--backend", "onnx", "--exports", Path(exported).parent, "--workers", "1")
    assert (tmp_path / "o3" / "people" / "grace.png").is_file()


def test_batch_usage_errors(photos, tmp_path):
    assert mgpe("batch", photos, tmp_path / "o").returncode == 2
    proc = mgpe("batch", photos, tmp_path / "o", "-m", "grow:eyes")
    assert proc.returncode == 2 and "bad mask op" in proc.stderr
    proc = mgpe("batch", photos, tmp_path / "o", "--transfer", "hair")
    assert proc.returncode == 2 and "--from" in proc.stderr
    proc = mgpe("batch", photos, tmp_path / "o", "-m", "hair->skin", "--backend", "onnx", "--exports", tmp_path)
    assert proc.returncode == 1 and "manifest" in proc.stderr


def test_shipped_demo_weights_export_without_arguments_and_are_not_the_default(tmp_path):
    demo = Path(__file__).resolve().parents[1] / "models" / "demo-tiny"
    card = json.loads((demo / "mgpe-gan.json").read_text())
    assert card["command"].startswith("mgpe train --config tiny") and card["metrics"]["mask_agreement"] > 0.8
    proc = mgpe("export", "onnx", "--out", "exports", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    man = json.loads((tmp_path / "exports" / "manifest.json").read_text())
    assert set(man["graphs"]) == {"encoders", "generator", "fuser", "parser"}
    assert man["weights"]["file"].endswith("demo-tiny/mgpe-gan.safetensors")
    from mgpe_toolkit.plugins import load_registry

    assert load_registry().default("generate").name == "classical"


def test_auto_never_picks_an_export_it_was_not_given(tmp_path, astronaut):
    from mgpe_toolkit.io import write_image

    write_image(tmp_path / "in" / "a.png", astronaut)
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "manifest.json").write_text("{ broken")  # what a half-finished export leaves
    proc = mgpe("batch", tmp_path / "in", tmp_path / "out", "-m", "hair->skin", "--workers", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "backend classical" in proc.stderr and (tmp_path / "out" / "a.png").is_file()
    named = mgpe("batch", tmp_path / "in", tmp_path / "out2", "-m", "hair->skin", "--exports", tmp_path / "exports")
    assert named.returncode != 0 and "manifest.json" in named.stdout + named.stderr
    assert "Traceback" not in named.stderr


def test_a_bad_face_to_take_is_one_line_before_any_worker(tmp_path, astronaut):
    import skimage.data

    from mgpe_toolkit.io import write_image

    write_image(tmp_path / "in" / "a.png", astronaut)
    write_image(tmp_path / "coffee.png", skimage.data.coffee())
    (tmp_path / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    for face, says in (("coffee.png", "no face found"), ("cut.jpg", "cut.jpg")):
        proc = mgpe("batch", tmp_path / "in", tmp_path / "out", "--swap-from", tmp_path / face, "--workers", "2")
        assert proc.returncode == 2 and says in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and "BrokenProcessPool" not in proc.stderr
        assert len([line for line in proc.stderr.splitlines() if line.strip()]) == 1, proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_truncated_or_garbage_graph_is_one_line(exported, tmp_path):
    """A graph cut short (a copy that ran out of disk) is named, with what to run, not an onnxruntime trace."""
    import shutil

    from mgpe_toolkit.errors import InputError
    from mgpe_toolkit.export.runtime import OnnxRunner

    folder = tmp_path / "exp"
    shutil.copytree(Path(exported).parent, folder)
    enc = folder / json.loads((folder / "manifest.json").read_text())["graphs"]["encoders"]["file"]
    enc.write_bytes(enc.read_bytes()[:1000])
    with pytest.raises(InputError, match="differs from the graph its manifest lists"):
        OnnxRunner(folder)
    man = json.loads((folder / "manifest.json").read_text())  # an export whose manifest has no digests
    for g in man["graphs"].values():
        g.pop("sha256_16", None)
    (folder / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(InputError, match="onnxruntime cannot load it"):
        OnnxRunner(folder)
    write_image(tmp_path / "raw" / "a.png", np.full((64, 64, 3), 128, np.uint8))
    r = mgpe("batch", tmp_path / "raw", tmp_path / "out", "-m", "hair=skin", "--backend", "onnx", "--exports", folder)
    assert r.returncode != 0 and "onnxruntime cannot load it" in r.stderr and "Traceback" not in r.stderr


def test_declared_output_shapes_are_the_real_ones(exported, weights):
    man = json.loads(Path(exported).read_text())
    fuser = man["graphs"]["fuser"]["outputs"][0]["shape"]
    assert fuser == ["batch", 3, 64, 64], fuser
    for g in man["graphs"].values():
        for o in g["outputs"]:
            assert o["shape"][0] == "batch" and all(isinstance(d, int) for d in o["shape"][1:]), (g["file"], o)


def test_a_second_export_into_a_busy_folder_is_refused_and_a_failed_one_leaves_it_as_it_was(weights, tmp_path,
                                                                                             monkeypatch):
    import os
    import subprocess
    import sys

    from mgpe_toolkit.errors import UsageError
    from mgpe_toolkit.io import claim, release

    out = tmp_path / "ex"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        claim(out / "manifest.json", sleeper.pid)  # an export in another live process
        with pytest.raises(UsageError, match="another export"):
            export_onnx(weights / "mgpe-gan.safetensors", out)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not list(out.glob("*.onnx"))
    first = export_onnx(weights / "mgpe-gan.safetensors", out)  # the claim of a dead process is taken over
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def boom(*args, **kwargs):
        raise RuntimeError("export failed half way")

    monkeypatch.setattr("mgpe_toolkit.export.onnx.export_graph", boom)
    with pytest.raises(RuntimeError):
        export_onnx(weights / "mgpe-gan.safetensors", out)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before and first.is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    release(out / "manifest.json")
    assert os.listdir(out)


def test_export_onnx_fails_when_the_graphs_do_not_match_the_weights(weights, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from mgpe_toolkit.cli import app

    args = ["export", "onnx", "--weights", str(weights / "mgpe-gan.safetensors"), "--out", str(tmp_path / "ok")]
    ok = CliRunner().invoke(app, args)
    assert ok.exit_code == 0, ok.output
    monkeypatch.setattr("mgpe_toolkit.export.onnx.parity", lambda *a, **k: {"encoders": 0.0, "generator": 3.41,
                                                                           "fuser": 0.0})
    bad = CliRunner().invoke(app, args)
    assert bad.exit_code == 1 and "generator graph differs from torch by 3.41" in bad.output, bad.output
