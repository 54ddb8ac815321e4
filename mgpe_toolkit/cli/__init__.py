"""The `mgpe` command: a thin typer layer over the Python API."""
from .app import app, main

__all__ = ["app", "main"]
