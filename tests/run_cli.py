"""The `mgpe` command as a user runs it: a fresh interpreter, output captured."""
import subprocess
import sys


def mgpe(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mgpe_toolkit", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)
