"""`mgpe studio`: thin over mgpe_toolkit.studio: check the extra is installed, bind, print the URL, serve."""
from __future__ import annotations

from typing import Optional

import typer

from .common import app, console, fail, styled

# Import names of the `studio` extra's packages, and the extra that brings them.
STUDIO_MODULES = ("starlette", "uvicorn")
INSTALL_HINT = 'pip install -e ".[studio]"'


@app.command("studio")
def studio_cmd(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(7860, "--port", min=0, max=65535, help="Port (0: any free one)."),
    weights: Optional[str] = typer.Option(None, "--weights", help="Learned weights (mgpe-gan.safetensors): "
                                          "selects the learned stages, as in mgpe edit."),
    parser: Optional[str] = typer.Option(None, "--parser", help="Parse implementation (see `mgpe plugins`)."),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in the default browser."),
):
    """A local web page: drop a photo, paint its mask, Generate; swap+ and transfer with a second photo."""
    import importlib.util
    from pathlib import Path

    missing = [m for m in STUDIO_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        fail(f"mgpe studio needs {', '.join(missing)}: {INSTALL_HINT}")
    if weights and not Path(weights).is_file():
        fail(f"--weights {weights}: no such file")
    from ..studio.server import listen, serve, url_of
    from ..studio.session import Studio, StudioError

    studio = Studio(parser=parser, weights=weights)
    for stage in ("align", "parse", "encode", "generate", "fuse"):
        studio.pipeline.stage(stage)  # an unusable stage or bad weights fail here, not on the first photo
    try:
        sock = listen(host, port)
    except StudioError as exc:
        fail(str(exc))
    url = url_of(sock)
    con = console()
    stages = ", ".join(f"{s} {studio.pipeline.implementation_name(s)}" for s in ("align", "parse", "encode",
                                                                                 "generate", "fuse"))
    con.print(f"mgpe studio at {url} ({stages}); Ctrl-C stops it", soft_wrap=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        con.print(styled("note:", "yellow", f"listening on {host}: anyone who can reach this machine can use it"),
                  soft_wrap=True)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        serve(studio, sock, host)
    except KeyboardInterrupt:
        pass
