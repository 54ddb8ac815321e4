"""`mgpe demo` end to end, and `mgpe doctor`."""
import json
import subprocess
import sys

import numpy as np

from mgpe_toolkit.io import read_image, read_mask


def test_demo_writes_every_promised_file(tmp_path):
    out = tmp_path / "demo-out"
    proc = subprocess.run([sys.executable, "-m", "mgpe_toolkit", "demo", "--out", str(out)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert "classical" in proc.stdout and "grid.png" in proc.stdout
    for name in ("astronaut", "grace_hopper"):
        photo = read_image(out / "photos" / f"{name}.png")
        assert read_image(out / "aligned" / f"{name}.png").shape == (256, 256, 3)
        assert (out / "aligned" / f"{name}.json").is_file()
        mask = read_mask(out / "masks" / f"{name}.png")
        assert mask.shape == (256, 256) and len(np.unique(mask)) > 8
        assert (out / "masks" / f"{name}.preview.png").is_file()
    results = {
        "edit/astronaut.hair-to-skin.png": "astronaut", "edit/grace_hopper.grow-eyes.png": "grace_hopper",
        "swap/astronaut-on-grace_hopper.png": "grace_hopper", "swap/grace_hopper-on-astronaut.png": "astronaut",
        "transfer/astronaut.hair-from-grace_hopper.png": "astronaut",
    }
    for rel, base in results.items():
        result, photo = read_image(out / rel), read_image(out / "photos" / f"{base}.png")
        assert result.shape == photo.shape, rel
        changed = (result != photo).any(-1).mean()
        assert 0.001 < changed < 0.5, (rel, changed)  # edited, but only what the edit is about
        assert (out / rel.replace(".png", ".aligned.png")).is_file()
    grid = read_image(out / "grid.png")
    assert grid.shape[0] > 300 and grid.shape[1] > 800


def test_doctor_reports_versions_plugins_and_weights():
    proc = subprocess.run([sys.executable, "-m", "mgpe_toolkit", "doctor", "--format", "json"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["packages"]["torch"] and report["face_graphs"]["problem"] is None
    assert "CPUExecutionProvider" in report["onnxruntime"]["available_providers"]
    # The real-photo parser ships in models/parser-real and is the default.
    assert report["defaults"]["parse"] == "unet" and report["defaults"]["generate"] == "classical"
    unet = [p for p in report["plugins"] if p["name"] == "unet"][0]
    assert unet["usable"]
    text = subprocess.run([sys.executable, "-m", "mgpe_toolkit", "doctor"], capture_output=True, text=True)
    assert text.returncode == 0 and "stage implementations" in text.stdout and "FID extractor" in text.stdout
    assert "face models (mediapipe 0.10.21" in text.stdout
