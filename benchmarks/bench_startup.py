"""Prints how long `mgpe --help` and `import mgpe_toolkit` take (median of N runs): the CLI must stay < 1 s."""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def median_seconds(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    beside = Path(sys.executable).with_name("mgpe")
    mgpe = str(beside) if beside.exists() else shutil.which("mgpe") or sys.exit("mgpe is not installed: pip install -e . first")
    rows = [
        ("python -c pass (interpreter start)", [sys.executable, "-c", "pass"]),
        ("import mgpe_toolkit", [sys.executable, "-c", "import mgpe_toolkit"]),
        ("mgpe --help", [mgpe, "--help"]),
        ("mgpe labels", [mgpe, "labels"]),
        ("mgpe plugins", [mgpe, "plugins"]),
    ]
    for label, argv in rows:
        print(f"{label:40s} {median_seconds(argv, args.runs) * 1000:7.0f} ms (median of {args.runs})")


if __name__ == "__main__":
    main()
