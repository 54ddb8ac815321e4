"""README promises: two opening commands, a label table that is the code's, a Python example that runs."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", README, re.S)


def test_readme_opens_with_exactly_two_commands():
    first = blocks("bash")[0].strip().splitlines()
    assert len(first) == 2
    assert first[0].startswith('pip install torch==2.13.0 -e ".[dev]"')
    assert first[1] == "python -m pytest -q"
    assert README.index("```bash") < README.index("\n## ")


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install --quiet --disable-pip-version-check torch==2.13.0 -e ".[dev]"' in ci
    assert "python -m pytest -q" in ci


def test_label_table_is_the_output_of_mgpe_labels_markdown():
    out = subprocess.run([sys.executable, "-m", "mgpe_toolkit", "labels", "--format", "markdown"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out in README


def test_python_api_example_runs(tmp_path):
    code = blocks("python")[0]
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, capture_output=True)
    from mgpe_toolkit.io import read_image, read_mask

    assert read_image(tmp_path / "face.png").shape == (256, 256, 3)
    assert read_mask(tmp_path / "edited.mask.png").shape == (256, 256)
    assert (tmp_path / "edited.mask.preview.png").exists()
