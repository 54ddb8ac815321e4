"""`python -m mgpe_toolkit` runs the CLI."""
from .cli import main

main()
