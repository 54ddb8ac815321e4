"""`mgpe export onnx --int8`: calibrated int8 convolutions, measured against fp32 with the trained demo weights."""
import json
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest

from mgpe_toolkit.export.onnx import export_onnx, measure_export
from mgpe_toolkit.io import read_image, write_image
from run_cli import mgpe

DEMO = Path(__file__).resolve().parents[1] / "models" / "demo-tiny"



@pytest.fixture(scope="module")
def int8(tmp_path_factory):
    out = tmp_path_factory.mktemp("int8")
    return export_onnx(DEMO / "mgpe-gan.safetensors", out, parser_weights=DEMO / "parser-unet.safetensors",
                       precision="int8", calibrate="synthetic:40", calibrate_count=24)


@pytest.fixture(scope="module")
def fp32(tmp_path_factory):
    return export_onnx(DEMO / "mgpe-gan.safetensors", tmp_path_factory.mktemp("fp32"))


def test_int8_manifest_records_the_calibration_and_leaves_fp32_exports_alone(int8):
    out = Path(int8).parent
    man = json.loads(Path(int8).read_text())
    assert Path(int8).name == "manifest.int8.json" and man["precision"] == "int8"
    cal = man["calibration"]
    assert cal["count"] == 24 and cal["spec"] == "synthetic:40" and "seeds 0..39" in cal["data"]
    assert sorted(p.name for p in out.iterdir()) == ["encoders.int8.onnx", "fuser.int8.onnx", "generator.int8.onnx",
                                                     "manifest.int8.json", "parser.int8.onnx"]


def test_int8_graphs_quantize_the_convolutions_but_not_the_full_resolution_ones(int8):
    man = json.loads(Path(int8).read_text())
    for name, g in man["graphs"].items():
        model = onnx.load(str(Path(int8).parent / g["file"]))
        onnx.checker.check_model(model)
        ops = Counter(n.op_type for n in model.graph.node)
        # a quantized conv takes its input and its weight from DequantizeLinear; a kept one takes neither
        dequantized = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
        convs = [n for n in model.graph.node if n.op_type == "Conv"]
        both = sum(n.input[0] in dequantized and n.input[1] in dequantized for n in convs)
        neither = sum(n.input[0] not in dequantized and n.input[1] not in dequantized for n in convs)
        kept = man["calibration"]["fp32_convs"][name]
        assert kept >= 2 and neither == kept and both == len(convs) - kept > 0, (name, ops, kept, both, neither)
        assert ops["QuantizeLinear"] > 0 and ops["InstanceNormalization"] + ops["Conv"] > 0


def test_int8_stays_close_to_fp32_on_faces_the_calibration_did_not_see(int8):
    quality, described = measure_export(DEMO / "mgpe-gan.safetensors", int8,
                                        parser_weights=DEMO / "parser-unet.safetensors")
    assert quality.faces == 16 and "seeds 50000..50015" in described
    # measured: 41.2 dB (worst 39.6); recon 15.38 dB both; parser agreement 0.998
    assert quality.image_psnr > 36 and quality.worst_psnr > 32, quality
    assert abs(quality.recon_psnr_int8 - quality.recon_psnr_fp32) < 0.3, quality
    assert quality.parser_agreement > 0.99, quality


def test_batch_runs_an_int8_manifest_close_to_fp32_on_a_real_photo(int8, fp32, tmp_path, astronaut):
    from mgpe_toolkit.metrics.reconstruction import psnr

    write_image(tmp_path / "in" / "astro.png", astronaut)
    aligned = {}
    # the int8 export's folder holds manifest.int8.json alone: --backend auto finds and runs it
    for name, exports in (("int8", Path(int8).parent), ("fp32", fp32)):
        proc = mgpe("batch", tmp_path / "in", tmp_path / name, "-m", "hair->skin", "--exports", exports,
                    "--workers", "1", "--aligned-out")
        assert proc.returncode == 0, proc.stderr
        assert f"onnxruntime (CPUExecutionProvider, {name})" in proc.stderr
        assert "batch size 1" in proc.stderr  # on a CPU, where it measured fastest
        assert read_image(tmp_path / name / "astro.png").shape == astronaut.shape
        aligned[name] = read_image(tmp_path / name / "astro.aligned.png")
    assert aligned["int8"].shape == (256, 256, 3) and aligned["int8"].std() > 10
    # calibrated on synthetic portraits, run on a photo: measured 40.8 dB (grace_hopper 39.8)
    assert 30 < psnr(aligned["int8"], aligned["fp32"]) < 60


def test_batch_asks_which_export_when_a_folder_holds_several(tmp_path, astronaut):
    write_image(tmp_path / "in" / "astro.png", astronaut)
    for name in ("manifest.int8.json", "manifest.fp16.json"):
        (tmp_path / "exports" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "exports" / name).write_text("{}")
    proc = mgpe("batch", tmp_path / "in", tmp_path / "out", "-m", "hair->skin", "--exports", tmp_path / "exports")
    assert proc.returncode == 2 and "several exports (manifest.fp16.json, manifest.int8.json)" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_cli_int8_export_reports_quality_and_rejects_bad_options(tmp_path):
    proc = mgpe("export", "onnx", "--int8", "--calibrate-count", "8", "--out", tmp_path / "e")
    assert proc.returncode == 0, proc.stderr
    assert "int8 vs fp32 torch on 16 held-out faces" in proc.stdout and "image PSNR" in proc.stdout
    psnr = float(proc.stdout.split("image PSNR")[1].split("dB")[0])
    assert psnr > 30, proc.stdout
    proc = mgpe("export", "onnx", "--int8", "--fp16", "--out", tmp_path / "e2")
    assert proc.returncode == 2 and "not both" in proc.stderr
    proc = mgpe("export", "onnx", "--int8", "--calibrate", tmp_path / "nope", "--out", tmp_path / "e3")
    assert proc.returncode == 2 and "nope: no such folder" in proc.stderr
    assert not (tmp_path / "e3" / "manifest.int8.json").exists()
    assert not [p for p in (tmp_path / "e3").iterdir() if p.name.startswith(".")]  # no work files left behind


def test_quantized_output_differs_from_fp32_by_small_steps_not_by_noise(int8, fp32):
    """The int8 graphs do change the numbers (they are not an fp32 copy), and the change is small."""
    from mgpe_toolkit.data.synthetic import synthetic_portrait
    from mgpe_toolkit.export.quantize import edit_batches
    from mgpe_toolkit.export.runtime import OnnxRunner

    faces = [synthetic_portrait(60000 + i, 64) for i in range(4)]
    b = edit_batches([f.image for f in faces], [f.mask for f in faces], 64)[0]
    outs = []
    for runner in (OnnxRunner(int8, "CPUExecutionProvider"), OnnxRunner(fp32, "CPUExecutionProvider")):
        outs.append(runner.render(runner.encode(b.crops), b.onehot, b.centres, b.target, b.removed))
    diff = np.abs(outs[0] - outs[1])
    assert 1e-4 < diff.mean() < 0.03, diff.mean()



def test_calibrating_on_a_folder_of_aligned_faces(tmp_path):
    """A user's own faces (images/ + masks/, as `mgpe train --data` takes them); too few to leave any out."""
    from mgpe_toolkit.data.synthetic import synthetic_portrait

    for i in range(5):
        p = synthetic_portrait(70000 + i, 64)
        write_image(tmp_path / "faces" / "images" / f"{i}.png", p.image)
        write_image(tmp_path / "faces" / "masks" / f"{i}.png", p.mask)
    proc = mgpe("export", "onnx", "--int8", "--calibrate", tmp_path / "faces", "--calibrate-count", "8",
                "--out", tmp_path / "e")
    assert proc.returncode == 0, proc.stderr
    cal = json.loads((tmp_path / "e" / "manifest.int8.json").read_text())["calibration"]
    assert cal["count"] == 5 and "5 pairs" in cal["data"], cal
    assert "calibration faces themselves" in proc.stdout.replace("\n", " ")


def test_int8_export_notes_when_the_weights_were_not_trained_on_synthetic_portraits(tmp_path):
    import torch

    from mgpe_toolkit.nets.config import PRESETS
    from mgpe_toolkit.nets.framework import MaskGuidedFramework
    from mgpe_toolkit.weights import save_generator

    torch.manual_seed(0)
    weights = save_generator(MaskGuidedFramework(PRESETS["tiny"]), tmp_path / "w.safetensors", step=5,
                               data="CelebAMask-HQ: 30000 pairs")
    args = ("export", "onnx", "--weights", weights, "--int8", "--calibrate-count", "4", "--no-check")
    proc = mgpe(*args, "--out", tmp_path / "e")
    assert proc.returncode == 0, proc.stderr
    assert "was trained on CelebAMask-HQ: 30000 pairs" in " ".join(proc.stderr.split())
    (tmp_path / "w.json").write_text(json.dumps({"data": "synthetic portraits: 8 at 64²"}))
    proc = mgpe(*args, "--out", tmp_path / "e3")
    assert proc.returncode == 0 and "note:" not in proc.stderr
