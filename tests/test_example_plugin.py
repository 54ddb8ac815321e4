"""Installs plugins/mgpe-haar with pip (into a temporary target) and uses it as a user would."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("src")
    import shutil

    shutil.copytree(ROOT / "plugins" / "mgpe-haar", build / "mgpe-haar")  # keep build litter out of the repo
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(build / "mgpe-haar")], check=True)
    env = dict(os.environ, PYTHONPATH=str(target))
    env.pop("MGPE_PLUGINS", None)
    return env


def test_installed_plugin_is_listed(installed):
    out = subprocess.run([sys.executable, "-m", "mgpe_toolkit", "plugins", "--format", "json"], env=installed,
                         capture_output=True, text=True, check=True)
    rows = {(r["stage"], r["name"]): r for r in json.loads(out.stdout)["implementations"]}
    assert rows[("align", "haar")]["origin"] == "package mgpe-haar 0.1.0"
    assert rows[("align", "haar")]["usable"] is True
    table = subprocess.run([sys.executable, "-m", "mgpe_toolkit", "plugins"], env=installed,
                           capture_output=True, text=True, check=True).stdout
    assert "haar" in table and "mgpe-haar" in table


def test_installed_plugin_is_selectable_and_aligns(installed):
    code = """
import json, numpy as np, skimage.data
from mgpe_toolkit import Pipeline
from mgpe_toolkit.align import apply_affine, template
img = skimage.data.astronaut()
haar = Pipeline(align="haar").align(img)[0]
mp = Pipeline(align="mediapipe").align(img)[0]
print(json.dumps({"aligner": haar.alignment.aligner, "score": haar.alignment.score,
                  "shape": list(haar.image.shape),
                  "eye_gap": float(np.abs(haar.alignment.landmarks[:2] - mp.alignment.landmarks[:2]).max()),
                  "mp_eyes_in_haar_crop": apply_affine(haar.alignment.matrix, mp.alignment.landmarks[:2]).tolist(),
                  "template": template()[:2].tolist()}))
"""
    out = subprocess.run([sys.executable, "-c", code], env=installed, capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["aligner"] == "haar" and r["score"] == 1.0 and r["shape"] == [256, 256, 3]
    # Haar's eyes agree with the mesh's to a few pixels in the 512² photo, so mediapipe's eyes land
    # near the template in the haar crop.
    assert r["eye_gap"] < 8
    for got, want in zip(r["mp_eyes_in_haar_crop"], r["template"]):
        assert abs(got[0] - want[0]) < 10 and abs(got[1] - want[1]) < 10
