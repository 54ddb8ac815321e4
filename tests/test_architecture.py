"""The package's plan, read from its imports (ast, every import, including those inside functions): each room
imports only rooms below it, no import circle, and the few rules docs/architecture.md states."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mgpe_toolkit"

# Rooms from the bottom up: a module may import its own layer (without a circle) or a lower one, never a higher.
LAYERS = (
    {"errors", "labels", "types", "hookspecs"},  # the vocabulary
    {"io", "nets", "metrics", "grid", "maskops", "data"},  # pure helpers, networks, datasets
    {"weights", "align", "plugins", "parse"},  # files -> networks, geometry, the registry
    {"export", "stages"},  # graphs; the stage implementations
    {"pipeline"},  # stages composed by name
    {"batch", "train", "studio", "demo", "doctor", "augment", "__init__"},  # what runs pipelines or trains
    {"cli", "__main__"},  # the command line
)
LAYER = {room: i for i, rooms in enumerate(LAYERS) for room in rooms}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every mgpe_toolkit module `name` imports, resolved to a module of the package."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for t in targets:
            while t not in known and "." in t:
                t = t.rsplit(".", 1)[0]
            if t in known and t != name and t.startswith("mgpe_toolkit"):
                found.add(t)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(name, path, set(mods)) for name, path in mods.items()}


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_room_has_a_layer():
    assert {room(m) for m in modules()} <= set(LAYER), "a new room: give it a layer in LAYERS"


def test_no_upward_import():
    upward = [f"{a} -> {b}" for a, targets in graph().items() for b in targets if LAYER[room(b)] > LAYER[room(a)]]
    assert not upward, upward


def test_no_import_circle():
    g = graph()
    state: dict[str, int] = {}
    circles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(g[node]):
            if state.get(nxt) == 1:
                circles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node, [node])
    assert not circles, circles


def test_networks_are_pure_modules():
    allowed = {"mgpe_toolkit.labels", "mgpe_toolkit.errors"}
    bad = [f"{a} -> {b}" for a, targets in graph().items() if room(a) == "nets"
           for b in targets if room(b) != "nets" and b not in allowed]
    assert not bad, bad


def test_only_weights_py_opens_weight_files():
    bad = []
    for name, path in modules().items():
        if name == "mgpe_toolkit.weights":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                bad += [f"{name} imports {n}" for n in names if n.split(".")[0] == "safetensors"]
            elif (isinstance(node, ast.Attribute) and node.attr == "load" and isinstance(node.value, ast.Name)
                  and node.value.id == "torch"):
                bad.append(f"{name} calls torch.load")
    assert not bad, bad


@pytest.mark.parametrize("low", ["stages", "export"])
def test_stages_and_export_never_reach_training_or_the_cli(low):
    bad = [f"{a} -> {b}" for a, targets in graph().items() if room(a) == low
           for b in targets if room(b) in ("train", "cli")]
    assert not bad, bad


def test_command_modules_import_common_not_each_other():
    assembly = {"mgpe_toolkit.cli", "mgpe_toolkit.cli.app"}  # the root app registers every command module
    shared = {"mgpe_toolkit.cli.common"}
    bad = [f"{a} -> {b}" for a, targets in graph().items() if room(a) == "cli" and a not in assembly
           for b in targets if room(b) == "cli" and b not in shared]
    assert not bad, bad


def test_the_rules_catch_what_they_forbid(tmp_path, monkeypatch):
    """The readers above see imports inside functions and relative imports: a planted upward import is found."""
    pkg = tmp_path / "mgpe_toolkit"
    (pkg / "nets").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "nets" / "__init__.py").write_text("")
    (pkg / "cli.py").write_text("")
    (pkg / "nets" / "x.py").write_text("def f():\n    from ..cli import main\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", pkg)
    assert graph()["mgpe_toolkit.nets.x"] == {"mgpe_toolkit.cli"}
