"""The stage registry: one pluggy manager loads built-ins and the `mgpe` entry-point group alike.

Set MGPE_PLUGINS to a comma-separated list of entry-point or distribution names to load only those
third-party plugins (empty: built-ins only). A plugin that fails to import or to register is recorded in
``Registry.failures`` and skipped; the others load.
"""
from __future__ import annotations

import fnmatch
import importlib
import os
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable

import pluggy

from . import hookspecs
from .errors import PluginError
from .types import STAGES

ENTRY_POINT_GROUP = "mgpe"
BUILTIN_MODULES: tuple[str, ...] = ("mgpe_toolkit.stages.builtin",)
# Preferred implementation per stage; the first usable one registered is the fallback.
DEFAULTS: dict[str, tuple[str, ...]] = {
    "align": ("mediapipe",), "parse": ("unet", "hybrid", "mesh"), "encode": ("mgpe", "classical"),
    "generate": ("mgpe", "classical"), "fuse": ("mgpe", "classical"),
}


@dataclass
class Implementation:
    stage: str
    name: str
    factory: Callable[..., Any]
    description: str = ""
    check: Callable[[], str | None] | None = None
    origin: str = "built-in"  # or "package NAME VERSION"

    def unusable_reason(self, **options: Any) -> str | None:
        """None when usable here (with these options), else why not (a check that raises counts as unusable).
        A check that takes keyword arguments sees the options, e.g. an explicit `weights` path."""
        if self.check is None:
            return None
        try:
            import inspect

            params = inspect.signature(self.check).parameters
            takes = {k: v for k, v in options.items() if k in params}
            return self.check(**takes)
        except Exception as exc:  # a broken check must not break listing
            return f"check failed: {type(exc).__name__}: {exc}"

    @property
    def usable(self) -> bool:
        return self.unusable_reason() is None


@dataclass
class PluginFailure:
    plugin: str
    origin: str
    error: str


@dataclass
class Registry:
    implementations: dict[tuple[str, str], Implementation] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)

    def list(self, stage: str | None = None, pattern: str = "*") -> list[Implementation]:
        """Implementations, in stage order then name, filtered by stage and a glob on the name."""
        return [impl for (s, n), impl in sorted(self.implementations.items(), key=lambda kv: (STAGES.index(kv[0][0]), kv[0][1]))
                if (stage is None or s == stage) and fnmatch.fnmatch(n, pattern)]

    def get(self, stage: str, name: str | None = None) -> Implementation:
        if stage not in STAGES:
            raise PluginError(f"unknown stage {stage!r} (stages: {', '.join(STAGES)})")
        if name is None:
            return self.default(stage)
        try:
            return self.implementations[(stage, name)]
        except KeyError:
            known = ", ".join(i.name for i in self.list(stage)) or "none"
            raise PluginError(f"no {stage} implementation named {name!r} (available: {known})") from None

    def default(self, stage: str) -> Implementation:
        candidates = self.list(stage)
        ranked = sorted(candidates, key=lambda i: (DEFAULTS.get(stage, ()) + (i.name,)).index(i.name))
        for impl in ranked:
            if impl.usable:
                return impl
        if not candidates:
            raise PluginError(f"no {stage} implementation is registered")
        reasons = "; ".join(f"{i.name}: {i.unusable_reason()}" for i in candidates)
        raise PluginError(f"no usable {stage} implementation ({reasons})")

    def create(self, stage: str, name: str | None = None, **options: Any) -> Any:
        """Instantiate an implementation, refusing one that is unusable here with its reason."""
        impl = self.get(stage, name)
        reason = impl.unusable_reason(**options)
        if reason:
            raise PluginError(f"{stage} implementation {impl.name!r} is not usable here: {reason}")
        try:
            import inspect

            inspect.signature(impl.factory).bind(**options)
        except TypeError as exc:
            raise PluginError(f"{stage} implementation {impl.name!r} does not take these options: {exc}") from None
        return impl.factory(**options)


def _selected(ep: metadata.EntryPoint, allow: set[str] | None) -> bool:
    if allow is None:
        return True
    dist = getattr(ep, "dist", None)
    return ep.name in allow or (dist is not None and dist.name in allow)


def _origin(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"package {dist.name} {dist.version}" if dist is not None else f"entry point {ep.value}"


def load_registry() -> Registry:
    """Build a fresh registry: built-ins first, then every allowed entry point of group `mgpe`."""
    pm = pluggy.PluginManager("mgpe")
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    origins: dict[str, str] = {}

    for modname in BUILTIN_MODULES:
        try:
            pm.register(importlib.import_module(modname), name=modname)
            origins[modname] = "built-in"
        except Exception as exc:
            registry.failures.append(PluginFailure(modname, "built-in", f"{type(exc).__name__}: {exc}"))

    raw = os.environ.get("MGPE_PLUGINS")
    allow = None if raw is None else {s.strip() for s in raw.split(",") if s.strip()}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if not _selected(ep, allow) or pm.has_plugin(ep.name):
            continue
        try:
            pm.register(ep.load(), name=ep.name)
            origins[ep.name] = _origin(ep)
        except Exception as exc:
            registry.failures.append(PluginFailure(ep.name, _origin(ep), f"import failed: {type(exc).__name__}: {exc}"))
        except SystemExit as exc:  # a plugin may not end the command that loads it
            registry.failures.append(PluginFailure(ep.name, _origin(ep), f"import failed: it called sys.exit({exc.code!r})"))

    # Call each plugin's hook on its own so one that raises cannot stop the others.
    for impl in pm.hook.register_stages.get_hookimpls():
        origin = origins.get(impl.plugin_name, impl.plugin_name)
        staged: list[Implementation] = []

        def register(stage: str, name: str, factory: Callable[..., Any], *, description: str = "",
                     check: Callable[[], str | None] | None = None, _origin: str = origin) -> None:
            if stage not in STAGES:
                raise ValueError(f"unknown stage {stage!r}")
            if not callable(factory):
                raise TypeError(f"factory for {stage}/{name} is not callable")
            staged.append(Implementation(stage, name, factory, description, check, _origin))

        try:
            impl.function(register=register)
        except (Exception, SystemExit) as exc:
            registry.failures.append(PluginFailure(impl.plugin_name, origin, f"registration failed: {type(exc).__name__}: {exc}"))
            continue
        for item in staged:
            key = (item.stage, item.name)
            if key in registry.implementations:
                taken = registry.implementations[key].origin
                registry.failures.append(PluginFailure(impl.plugin_name, origin,
                                                       f"{item.stage} name {item.name!r} already taken by {taken}; skipped"))
                continue
            registry.implementations[key] = item
    return registry


_REGISTRY: Registry | None = None


def get_registry(reload: bool = False) -> Registry:
    """The process-wide registry, built on first use."""
    global _REGISTRY
    if _REGISTRY is None or reload:
        _REGISTRY = load_registry()
    return _REGISTRY
