"""pluggy hook specifications: the one way stage implementations enter mgpe, built-in or third-party."""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("mgpe")
hookimpl = pluggy.HookimplMarker("mgpe")


@hookspec
def register_stages(register):
    """Register stage implementations.

    Call ``register(stage, name, factory, *, description="", check=None)`` once per implementation:
    ``stage`` is one of align, parse, encode, generate, fuse; ``factory(**options)`` returns an object with
    the stage's method (see ``mgpe_toolkit.types``); ``check()`` returns None when the implementation is
    usable here, or a short reason why not (e.g. "no weights at models/x.safetensors").
    """
