"""The `mgpe` command: the root app of `common` with every command module registered, and the entry point."""
from __future__ import annotations

import signal
import sys

from ..errors import MgpeError

# Each command module registers its commands on the root app, in the order `mgpe --help` lists them.
from . import faces, info  # noqa: E402,F401,I001  (align, parse, paste-back; labels, plugins, version)
from . import edit, studio, batch  # noqa: E402,F401,I001  (edit, swap+, transfer, synth; studio; batch)
from .evaluate import eval_app  # noqa: E402,I001  (augment, and the eval group)
from . import demo  # noqa: E402,F401,I001  (demo, doctor)
from .common import _STOPPED_BY, app, console, note_warnings, styled  # noqa: E402
from .export import export_app  # noqa: E402
from .train import train_app  # noqa: E402

app.add_typer(train_app, name="train")
app.add_typer(export_app, name="export")
app.add_typer(eval_app, name="eval")


def _terminate(signum, frame) -> None:
    """SIGTERM stops a run like Ctrl-C: finished outputs kept, workers shut down, temporary files removed."""
    _STOPPED_BY["signal"] = signum
    raise KeyboardInterrupt


def main() -> None:
    """Console entry point: user errors print one line and exit with their code, never a traceback."""
    signal.signal(signal.SIGTERM, _terminate)
    note_warnings()
    for stream in (sys.stdout, sys.stderr):  # a file name the terminal's encoding cannot show prints escaped
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        app()
    except SystemExit as done:
        if not done.code and "torch.distributed" in sys.modules:  # a rank that ended well, its loop or not
            from ..train.ddp import finish

            finish()
        raise
    except MgpeError as exc:
        console(stderr=True).print(styled("error:", "bold red", str(exc)), soft_wrap=True)
        if "torch.distributed" in sys.modules and sys.modules["torch.distributed"].is_initialized():
            from ..train.ddp import exit_now

            exit_now(exc.exit_code)  # a rank of a run: see exit_now
        sys.exit(exc.exit_code)
