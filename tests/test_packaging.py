"""What `pip install mgpe-toolkit` gets: the wheel carries the default weights and their cards, and parses with
them outside the checkout (issue 38). `.ci/run` also installs that wheel into a fresh venv with its dependencies."""
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject():
    tomllib = pytest.importorskip("tomllib")
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "mgpe_toolkit").rglob("__init__.py")}
    assert found <= listed and "mgpe_models" in listed, found - listed


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                           "-w", str(out), str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return next(out.glob("*.whl"))


def test_the_wheel_carries_the_default_weights_face_graphs_and_their_cards(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("parser-real", "demo-tiny"):
        assert f"mgpe_models/{folder}/parser-unet.safetensors" in names
        assert f"mgpe_models/{folder}/parser-unet.json" in names and f"mgpe_models/{folder}/README.md" in names
    # mediapipe's face models as ONNX graphs, with their licence and card (issue 40); not the conversion script.
    from mgpe_toolkit.stages.face_graphs import GRAPH_DIR, GRAPHS

    for name in (*GRAPHS.values(), "LICENSE", "README.md"):
        assert f"mgpe_models/{GRAPH_DIR}/{name}" in names, name
    assert f"mgpe_models/{GRAPH_DIR}/convert.py" not in names


def test_installed_from_the_wheel_it_parses_with_the_shipped_parser(wheel, tmp_path, astronaut):
    from mgpe_toolkit.io import read_mask, write_image

    import sysconfig

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # The dependencies of this interpreter's environment (not the system's, whose versions may differ), after the
    # venv's own site-packages: the wheel's mgpe_toolkit and mgpe_models come first.
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / "deps.pth").write_text("\n".join(dict.fromkeys([sysconfig.get_paths()["purelib"],
                                                              sysconfig.get_paths()["platlib"]])) + "\n")
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--no-deps", str(wheel)],
                         capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr
    write_image(tmp_path / "a.png", astronaut)
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "from mgpe_toolkit.weights import "
                            "default_parser; print(default_parser())"], capture_output=True, text=True,
                           cwd=tmp_path)
    assert str(venv) in where.stdout and "mgpe_models/parser-real" in where.stdout, where.stdout + where.stderr
    proc = subprocess.run([str(venv / "bin" / "mgpe"), "parse", "a.png", "installed"], capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    here = subprocess.run([sys.executable, "-m", "mgpe_toolkit", "parse", "a.png", "checkout"], capture_output=True,
                          text=True, cwd=tmp_path)
    assert here.returncode == 0, here.stderr
    assert np.array_equal(read_mask(tmp_path / "installed" / "a.png"), read_mask(tmp_path / "checkout" / "a.png"))
