import json
import subprocess
import sys

from typer.testing import CliRunner

from mgpe_toolkit.cli import app
from run_cli import mgpe

runner = CliRunner()
COMMANDS = ["align", "parse", "edit", "swap+", "transfer", "synth", "train", "export", "batch", "eval",
            "labels", "plugins", "version"]


def test_help_lists_every_command():
    out = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert out.exit_code == 0
    for name in COMMANDS:
        assert f" {name} " in out.stdout, name


def test_labels_table_and_json():
    out = runner.invoke(app, ["labels"], env={"COLUMNS": "200"})
    assert out.exit_code == 0
    for name in ("background", "l_eye", "hair", "cloth", "left_eye", "144×80"):
        assert name in out.stdout
    data = json.loads(runner.invoke(app, ["labels", "--format", "json", "--resolution", "128"]).stdout)
    assert [r["name"] for r in data["labels"]][13] == "hair"
    assert data["labels"][13]["bisenet"] == 17 and data["labels"][13]["helen"] == "10"
    assert {c["component"]: c["crop"] for c in data["components"]}["mouth"] == "72×40"


def test_plugins_json_marks_the_default():
    data = json.loads(runner.invoke(app, ["plugins", "--format", "json", "--stage", "align"]).stdout)
    mp = [r for r in data["implementations"] if r["name"] == "mediapipe"][0]
    assert mp["origin"] == "built-in" and mp["usable"] and mp["default"]
    assert runner.invoke(app, ["plugins", "--stage", "paint"]).exit_code == 2


def test_version_names_the_stack():
    out = runner.invoke(app, ["version"])
    assert out.exit_code == 0 and out.stdout.startswith("mgpe ") and "torch " in out.stdout


def test_console_script_gives_one_line_errors_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "mgpe_toolkit", "labels", "--format", "xml"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --format must be table, json or markdown, got 'xml'"
    assert "Traceback" not in proc.stderr


def test_help_does_not_import_heavy_modules():
    code = ("import sys; from mgpe_toolkit.cli import app; from typer.testing import CliRunner; "
            "CliRunner().invoke(app, ['--help']); "
            "print(sorted(m for m in ('torch', 'mediapipe', 'onnxruntime', 'cv2', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_user_strings_print_as_given(tmp_path, astronaut):
    from mgpe_toolkit.io import write_image

    odd = tmp_path / "x["
    write_image(odd / "[bold]me.png", astronaut)
    proc = mgpe("parse", odd, tmp_path / "out[/]", "--coords", "aligned")
    assert proc.returncode == 0, proc.stderr
    assert "out[/]" in proc.stdout.replace("\n", "") and "Traceback" not in proc.stderr
    assert (tmp_path / "out[/]" / "[bold]me.png").is_file()
    bad = mgpe("edit", "--mask-op", "grow:eyes:x", odd / "[bold]me.png")
    assert bad.returncode == 2 and "grow:eyes:x" in bad.stderr and "👀" not in bad.stderr, bad.stderr
    markup = mgpe("edit", "--mask-op", "[/]", odd / "[bold]me.png")
    assert markup.returncode == 2 and "[/]" in markup.stderr and "Traceback" not in markup.stderr, markup.stderr
    missing = mgpe("parse", tmp_path / "[red]none", tmp_path / "o")
    assert missing.returncode == 2 and "[red]none" in missing.stderr
