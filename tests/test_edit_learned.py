"""The learned `mgpe` stages: usable only with weights, selected by --weights, and they run end to end."""
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from mgpe_toolkit import Pipeline
from mgpe_toolkit.data.synthetic import synthetic_portrait
from mgpe_toolkit.io import read_image, write_image, write_mask
from mgpe_toolkit.nets.config import PRESETS
from mgpe_toolkit.data.sets import SyntheticSet
from mgpe_toolkit.train.gan import GANTrainer, run_gan_training


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    out = tmp_path_factory.mktemp("gan")
    trainer = GANTrainer(SyntheticSet(50, 64), out, replace(PRESETS["tiny"], lambda_gp=0.0), parser_weights=None,
                         device="cpu")
    run_gan_training(trainer, 20, data_description="synthetic")
    return out / "mgpe-gan.safetensors"


def test_learned_stages_are_unusable_without_weights_and_say_why(monkeypatch, tmp_path):
    monkeypatch.setattr("mgpe_toolkit.weights.REPO_MODELS", tmp_path)
    monkeypatch.delenv("MGPE_MODELS", raising=False)
    proc = subprocess.run([sys.executable, "-m", "mgpe_toolkit", "plugins", "--format", "json", "--stage", "generate"],
                          capture_output=True, text=True, env={**__import__("os").environ, "MGPE_MODELS": str(tmp_path)})
    rows = {r["name"]: r for r in json.loads(proc.stdout)["implementations"]}
    assert rows["classical"]["default"] and rows["classical"]["usable"]
    assert not rows["mgpe"]["usable"] and "mgpe-gan.safetensors" in rows["mgpe"]["reason"]


def test_learned_edit_runs_at_any_size(weights):
    pipe = Pipeline(encode="mgpe", generate="mgpe", fuse="mgpe",
                    options={s: {"weights": str(weights)} for s in ("encode", "generate", "fuse")})
    p = synthetic_portrait(7, 256)
    face = pipe.prepare(p.image, aligned=True, mask=p.mask)
    res = pipe.edit(face, ["hair->skin"])
    assert res.aligned.shape == (256, 256, 3) and res.aligned.dtype == np.uint8
    assert res.stages == {"encode": "mgpe", "generate": "mgpe", "fuse": "mgpe"}
    other = synthetic_portrait(8, 256)
    swapped = pipe.swap(face, pipe.prepare(other.image, aligned=True, mask=other.mask))
    assert not np.array_equal(swapped.aligned, res.aligned)


def test_cli_weights_select_the_learned_path(weights, tmp_path):
    p = synthetic_portrait(3, 64)
    write_image(tmp_path / "face.png", p.image)
    write_mask(tmp_path / "face.mask.png", p.mask)
    proc = subprocess.run([sys.executable, "-m", "mgpe_toolkit", "edit", "--aligned", str(tmp_path / "face.png"),
                           "--source-mask", str(tmp_path / "face.mask.png"), "-m", "hair->skin", "--weights",
                           str(weights), "-o", str(tmp_path / "out.png")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "generate mgpe" in proc.stdout and read_image(tmp_path / "out.png").shape == (64, 64, 3)
