import textwrap

import numpy as np
import pytest

from mgpe_toolkit import Pipeline
from mgpe_toolkit.errors import PluginError
from mgpe_toolkit.plugins import load_registry


def make_dist(root, dist, ep_name, module, source):
    """A minimal installed distribution with one `mgpe` entry point, on a folder we put on sys.path."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(f"[mgpe]\n{ep_name} = {module}\n")


GOOD = """
    from mgpe_toolkit.hookspecs import hookimpl
    from mgpe_toolkit.types import FaceMask
    import numpy as np

    class Flat:
        def __init__(self, label=1):
            self.label = label
        def parse(self, image):
            return FaceMask(np.full(image.shape[:2], self.label, np.uint8), parser="flat")

    @hookimpl
    def register_stages(register):
        register("parse", "flat", Flat, description="every pixel one label")
        register("fuse", "needs-weights", object, check=lambda: "no weights at models/x.safetensors")
"""


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("MGPE_PLUGINS", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_builtins_register_through_the_hook():
    reg = load_registry()
    impl = reg.get("align", "mediapipe")
    assert impl.origin == "built-in" and impl.usable
    assert reg.default("align").name == "mediapipe"


def test_third_party_plugin_is_listed_with_origin_and_selectable(plugin_dir):
    make_dist(plugin_dir, "mgpe-flat", "flat", "mgpe_flat_test", GOOD)
    reg = load_registry()
    impl = reg.get("parse", "flat")
    assert impl.origin == "package mgpe-flat 0.3"
    pipe = Pipeline(registry=reg, parse="flat", options={"parse": {"label": 13}})
    mask = pipe.parse(np.zeros((4, 5, 3), np.uint8))
    assert mask.labels.shape == (4, 5) and (mask.labels == 13).all()
    assert [i.name for i in reg.list(pattern="fl*")] == ["flat"]


def test_unusable_implementation_says_why_and_cannot_be_created(plugin_dir):
    make_dist(plugin_dir, "mgpe-flat", "flat", "mgpe_flat_test2", GOOD)
    reg = load_registry()
    impl = reg.get("fuse", "needs-weights")
    assert not impl.usable and "no weights" in impl.unusable_reason()
    with pytest.raises(PluginError, match="not usable here: no weights"):
        reg.create("fuse", "needs-weights")
    assert reg.default("fuse").name == "classical"  # an unusable plugin never becomes the default


def test_broken_plugins_are_reported_and_skipped(plugin_dir):
    make_dist(plugin_dir, "mgpe-flat", "flat", "mgpe_flat_test3", GOOD)
    make_dist(plugin_dir, "mgpe-boom", "boom", "mgpe_boom_test", "raise RuntimeError('kaboom at import')\n")
    make_dist(plugin_dir, "mgpe-badreg", "badreg", "mgpe_badreg_test", """
        from mgpe_toolkit.hookspecs import hookimpl
        @hookimpl
        def register_stages(register):
            register("parse", "half", object)
            register("paint", "x", object)
    """)
    make_dist(plugin_dir, "mgpe-dup", "dup", "mgpe_dup_test", """
        from mgpe_toolkit.hookspecs import hookimpl
        @hookimpl
        def register_stages(register):
            register("align", "mediapipe", object)
    """)
    make_dist(plugin_dir, "mgpe-quits", "quits", "mgpe_quits_test", "import sys\nsys.exit(3)\n")
    reg = load_registry()
    errors = {f.plugin: f.error for f in reg.failures}
    assert "kaboom at import" in errors["boom"]
    assert "called sys.exit(3)" in errors["quits"]
    assert "unknown stage 'paint'" in errors["badreg"]
    assert "already taken by built-in" in errors["dup"]
    assert reg.get("parse", "flat").usable  # the good plugin still loaded
    assert reg.get("align", "mediapipe").origin == "built-in"
    with pytest.raises(PluginError, match="no parse implementation named 'half'"):
        reg.get("parse", "half")  # a failed registration adds nothing


def test_env_var_restricts_third_party_plugins(plugin_dir, monkeypatch):
    make_dist(plugin_dir, "mgpe-flat", "flat", "mgpe_flat_test4", GOOD)
    monkeypatch.setenv("MGPE_PLUGINS", "")
    assert ("parse", "flat") not in load_registry().implementations
    monkeypatch.setenv("MGPE_PLUGINS", "mgpe-flat")
    assert ("parse", "flat") in load_registry().implementations


def test_unknown_names_are_usage_errors():
    reg = load_registry()
    with pytest.raises(PluginError, match="no align implementation named 'nope' \\(available: .*mediapipe"):
        reg.get("align", "nope")
    with pytest.raises(PluginError, match="unknown stage"):
        reg.get("colour")
    with pytest.raises(TypeError, match="unknown stage"):
        Pipeline(parser="mesh")
