"""The default parser: the U-Net trained on real photos (models/parser-real), run through onnxruntime."""
import os
from pathlib import Path

import numpy as np
import pytest

from mgpe_toolkit import Pipeline
from mgpe_toolkit.io import read_mask, write_image
from mgpe_toolkit.labels import LABEL_INDEX as L
from mask_checks import centroid
from mgpe_toolkit.train.data import flip_sample
from run_cli import mgpe

LFW = Path(os.environ.get("MGPE_LFW_HAIR", Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "lfw-hair"))


@pytest.fixture(scope="module")
def pipe():
    return Pipeline()


@pytest.fixture(scope="module")
def faces(pipe, astronaut, grace_hopper):
    return {name: pipe.align(photo)[0].image for name, photo in (("astronaut", astronaut),
                                                                   ("grace_hopper", grace_hopper))}


def test_the_shipped_weights_are_the_default(pipe):
    from mgpe_toolkit.io import read_json
    from mgpe_toolkit.stages.parse_unet import shipped_weights

    assert pipe.implementation_name("parse") == "unet"
    parser = pipe.stage("parse")
    assert parser.path.resolve() == shipped_weights().resolve()
    card = read_json(shipped_weights().with_suffix(".json"))
    assert card["steps"] > 1000 and "lfw-hair" in card["data"] and card["metrics"]["helen"]["accuracy"] > 0.9


def test_without_weights_mesh_is_the_fallback(monkeypatch, tmp_path):
    from mgpe_toolkit.plugins import load_registry

    monkeypatch.setattr("mgpe_toolkit.weights.REPO_MODELS", tmp_path)
    monkeypatch.setenv("MGPE_MODELS", str(tmp_path))
    assert Pipeline(registry=load_registry()).implementation_name("parse") == "mesh"


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_masks_of_real_photos_have_a_face_layout(faces, pipe, name):
    m = pipe.parse(faces[name]).labels
    assert m.shape == (256, 256) and m.dtype == np.uint8 and m.max() < 19
    (lex, ley), (rex, rey) = centroid(m, "l_eye"), centroid(m, "r_eye")
    assert abs(lex - 96.5) < 10 and abs(rex - 159.5) < 10 and abs(ley - 120) < 10 and abs(ley - rey) < 6
    nose_y = centroid(m, "nose")[1]
    mouth_y = centroid(m, "u_lip", "l_lip", "mouth")[1]
    brow_y = centroid(m, "l_brow", "r_brow")[1]
    assert brow_y < ley < nose_y < mouth_y
    # The astronaut's head is hair; Grace Hopper's is her uniform cap (the `mesh` parser calls it hair).
    head, other = ("hair", "hat") if name == "astronaut" else ("hat", "hair")
    head_ys, _ = np.nonzero(m == L[head])
    assert len(head_ys) > 0.05 * m.size and np.percentile(head_ys, 10) < brow_y - 20
    assert (m == L[other]).sum() < 0.2 * len(head_ys)
    assert (m[int(nose_y), 80] == L["skin"]) and (m[int(nose_y), 176] == L["skin"])


def test_a_mirrored_face_gives_the_mirrored_mask_with_sides_swapped(faces, pipe):
    img = faces["astronaut"]
    m = pipe.parse(img).labels
    flipped = pipe.parse(np.ascontiguousarray(img[:, ::-1])).labels
    _, back = flip_sample(img, flipped)  # mirror it back, l_/r_ swapped
    assert (back == m).mean() > 0.97
    for name in ("l_eye", "r_eye", "l_brow", "r_brow", "hair"):
        a, b = m == L[name], back == L[name]
        assert (a & b).sum() / (a | b).sum() > 0.6, name


def test_grey_photos_keep_hair_and_clothes_are_never_hat(faces, pipe):
    for img in faces.values():
        colour = pipe.parse(img).labels
        grey = np.repeat(img.astype(float) @ [0.299, 0.587, 0.114], 3).reshape(img.shape).round().astype(np.uint8)
        m = pipe.parse(grey).labels
        for label in ("hair", "hat", "cloth"):
            was = colour == L[label]
            if was.sum() > 0.02 * m.size:
                assert (m[was] == L[label]).mean() > 0.85, label
        assert (m[colour == L["cloth"]] == L["hat"]).mean() < 0.01


def test_onnxruntime_and_torch_agree(faces):
    import torch

    from mgpe_toolkit.stages.parse_unet import UNetParser, load_unet, shipped_weights

    parser = UNetParser()
    model, size = load_unet(shipped_weights())
    img = faces["grace_hopper"]
    ours = parser.logits(img)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        ref = model(x)[0].numpy()
    assert ours.shape == ref.shape == (19, size, size)
    assert np.abs(ours - ref).max() < 1e-3
    assert (ours.argmax(0) == ref.argmax(0)).mean() > 0.999


def test_the_onnx_graph_is_cached_by_the_weights_hash(tmp_path, monkeypatch):
    from mgpe_toolkit.stages.parse_unet import onnx_graph, shipped_weights

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    graph, size = onnx_graph(shipped_weights())
    cached = list((tmp_path / "mgpe").glob("parser-unet-*.onnx"))
    assert len(cached) == 1 and cached[0].read_bytes() == graph and size == 256
    assert onnx_graph(shipped_weights()) == (graph, size)


def test_a_folder_with_corrupt_grey_and_16_bit_photos(tmp_path, astronaut):
    from PIL import Image

    src = tmp_path / "photos"
    write_image(src / "colour.png", astronaut)
    write_image(src / "grey.png", astronaut.mean(-1).astype(np.uint8))
    Image.fromarray((astronaut[..., 1].astype(np.uint16) * 257)).save(src / "deep.png")
    (src / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    out = tmp_path / "masks"
    proc = mgpe("parse", src, out)
    assert proc.returncode == 1 and "corrupt.jpg" in proc.stdout, proc.stdout + proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["colour.png", "deep.png", "grey.png"]
    colour = read_mask(out / "colour.png")
    for name in ("grey.png", "deep.png"):
        m = read_mask(out / name)
        assert m.shape == astronaut.shape[:2]
        hair = (colour == L["hair"])
        assert ((m == L["hair"]) & hair).sum() > 0.8 * hair.sum(), name


def test_other_people_are_background():
    from mgpe_toolkit.stages.parse_unet import one_face

    m = np.zeros((256, 256), np.uint8)
    m[100:200, 90:170] = L["skin"]  # this face
    m[60:100, 80:180] = L["hair"]
    m[200:256, 60:200] = L["cloth"]
    m[90:150, 210:250] = L["skin"]  # someone beside it, with hair and clothes of their own
    m[70:90, 205:256] = L["hair"]
    m[150:256, 215:256] = L["cloth"]
    m[140:150, 205:210] = L["hair"]  # a strand touching nothing kept
    out = one_face(m)
    assert (out[:, :200] == m[:, :200]).all()
    assert (out[:, 205:] == 0).all()


def test_held_out_hair_on_photos_in_the_wild(tmp_path):
    """A guard below the measured figure (README: 0.741 on all 235 held-out photos, `bench_parse.py`)."""
    if not (LFW / "hair").is_dir():
        pytest.skip(f"lfw-hair not found at {LFW}")
    import subprocess
    import sys

    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_parse.py"
    proc = subprocess.run([sys.executable, str(bench), str(LFW), "--labels", "lfw-hair", "--coords", "original",
                           "--limit", "40", "--json", str(tmp_path / "r.json")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    report = __import__("json").loads((tmp_path / "r.json").read_text())
    assert report["lfw_hair"]["photos"] == 40 and report["lfw_hair"]["hair_iou"] > 0.65, report


def test_accuracy_on_helen_samples(helen_dir, pipe):
    """A guard below the measured figures (README: accuracy 0.931, hair IoU 0.836, lips merged)."""
    from mask_checks import helen_confusion

    total = helen_confusion(pipe, helen_dir)
    iou = total.iou()
    assert total.accuracy >= 0.925, total.accuracy
    assert iou["hair"] >= 0.82 and iou["skin"] > 0.87, iou


def test_an_export_of_trained_weights_carries_the_default_parser(tmp_path):
    import json

    from mgpe_toolkit.stages.parse_unet import shipped_weights

    demo = Path(__file__).resolve().parents[1] / "models" / "demo-tiny" / "mgpe-gan.safetensors"
    proc = mgpe("export", "onnx", "--weights", demo, "--out", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert "parser" in manifest["graphs"] and manifest["parser_resolution"] == 256
    assert Path(manifest["parser_weights"]["file"]).resolve() == shipped_weights().resolve()
    assert (tmp_path / "parser.onnx").is_file()
