"""`mgpe train --gpus N`: start N processes of one training run on this machine, with the environment torchrun
gives its workers, and end the run with one line naming the rank that failed (torchrun's own report is a page of
tracebacks). Several machines: torchrun itself, see docs/training.md."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .ddp import EXIT_PEER_LOST, LAUNCH_LOGS


@dataclass
class Outcome:
    """How a launched run ended: code 0, or the first failed rank's exit code and why, in one line."""
    code: int
    rank: int | None = None
    message: str = ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    # torch prefixes what an uncaught exception prints in a rank with "[rankN]: "
    return re.sub(r"^\[rank\d+\]:\s*", "", lines[-1]) if lines else ""


def launch(command: list[str], nproc: int, logs: Path, *, env: dict[str, str] | None = None,
           grace_s: float = 20.0) -> Outcome:
    """Run `command` as ranks 0..nproc-1 of one process group (gloo on CPU, nccl on GPUs: the command decides).
    Rank 0 keeps the console; the others write to logs/rank-N.log. When a rank fails, the others get `grace_s`
    to stop by themselves (rank 0 may be writing a checkpoint), then SIGTERM."""
    logs.mkdir(parents=True, exist_ok=True)
    base = {**os.environ, **(env or {}), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()),
            "WORLD_SIZE": str(nproc), "LOCAL_WORLD_SIZE": str(nproc), LAUNCH_LOGS: str(logs)}
    # As torchrun: the ranks share the cores instead of each starting one thread per core.
    base.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    procs: list[subprocess.Popen] = []
    files = []
    try:
        for rank in range(nproc):
            log = logs / f"rank-{rank}.log"
            log.write_text("")
            out = None
            if rank > 0:
                out = log.open("a")
                files.append(out)
            procs.append(subprocess.Popen(command, env={**base, "RANK": str(rank), "LOCAL_RANK": str(rank)},
                                          stdout=out, stderr=out))
        failed: tuple[int, int] | None = None
        deadline = None
        while True:
            codes = [p.poll() for p in procs]
            if failed is None:
                # A rank that stopped because another did is not the cause, unless nothing else failed.
                bad = [(r, c) for r, c in enumerate(codes) if c not in (None, 0, EXIT_PEER_LOST)]
                if bad:
                    failed, deadline = bad[0], time.monotonic() + grace_s
            if all(c is not None for c in codes):
                break
            if deadline is not None and time.monotonic() > deadline:
                for p in procs:
                    if p.poll() is None:
                        p.terminate()
                deadline = time.monotonic() + 1e9
            time.sleep(0.05)
    except KeyboardInterrupt:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait()
        return Outcome(130, None, "stopped (Ctrl-C)")
    finally:
        for f in files:
            f.close()
    codes = [p.returncode for p in procs]
    if codes[0] not in (0, EXIT_PEER_LOST) and codes[0] > 0:
        failed = (0, codes[0])  # rank 0 failed by itself too (bad settings): its own line is on the console
    if failed is None:
        failed = next(((r, c) for r, c in enumerate(codes) if c != 0), None)
    if failed is None:
        return Outcome(0)
    rank, code = failed
    why = _last_line(logs / f"rank-{rank}.log")
    if rank == 0 and code != EXIT_PEER_LOST:
        message = ""  # rank 0 printed its own error on the console
    else:
        how = f"signal {-code}" if code < 0 else f"exit {code}"
        message = f"rank {rank} of {nproc} failed ({how}){': ' + why.removeprefix('error: ') if why else ''}"
    return Outcome(code if code > 0 else 1, rank, message)


def _without(argv: list[str], options: tuple[str, ...]) -> list[str]:
    """argv less `options` and their values (`--gpus 2` or `--gpus=2`)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in options:
            skip = True
        elif not arg.startswith(tuple(o + "=" for o in options)):
            out.append(arg)
    return out


def relaunch(argv: list[str], *, gpus: int, nproc: int, device: str, checkpoint: Path) -> Outcome:
    """Run this `mgpe` command line again as `gpus` (one per GPU, nccl) or `nproc` (on `device`; gloo on CPU)
    processes of one run; logs of ranks 1.. in OUT/logs. The outcome's message says whether `checkpoint` is
    there to resume from."""
    import sys

    from ..errors import UsageError

    if gpus and nproc:
        raise UsageError("--gpus N and --nproc N both start N processes: give one")
    n = gpus or nproc
    if gpus:
        import torch

        if device not in ("auto",) and not device.startswith("cuda"):
            raise UsageError(f"--gpus {gpus} trains on GPUs: leave out --device {device} (or use --nproc)")
        if device.startswith("cuda:"):
            raise UsageError("--gpus N uses GPUs 0..N-1 (one per process): leave out the GPU's number in --device "
                             "(choose GPUs with CUDA_VISIBLE_DEVICES)")
        have = torch.cuda.device_count()
        if gpus > have:
            raise UsageError(f"--gpus {gpus}: this machine has {have} CUDA GPU(s) (on CPU, --nproc N runs N "
                             "processes)")
    command = [sys.executable, "-m", "mgpe_toolkit", *_without(argv, ("--gpus", "--nproc"))]
    outcome = launch(command, n, checkpoint.parent / "logs")
    if outcome.code and outcome.message:
        outcome.message += "; " + _checkpoint_note(checkpoint)
    return outcome


def _checkpoint_note(checkpoint: Path) -> str:
    from ..errors import MgpeError
    from ..train.checkpoint import read_checkpoint

    if not checkpoint.is_file():
        return "no checkpoint was written"
    try:
        step = read_checkpoint(checkpoint)[1]["step"]
    except MgpeError as exc:
        return f"the checkpoint is unreadable ({exc})"
    return f"{checkpoint} (step {step}) is intact: --resume continues from it"
