"""What makes N training processes at batch B/N train like one process at batch B: the world from torchrun's
environment, each rank's share of a step's batch, DistributedDataParallel, and the few collectives the losses
need (a roll over the whole batch, means whose denominators differ between ranks)."""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from ..errors import MgpeError, UsageError

LAUNCH_LOGS = "MGPE_LAUNCH_LOGS"  # set by launch.py: the folder where a rank says why it stopped
_JOINED: list[bool] = []  # non-empty while this process is in a group that `join` set up (and `finish` ends)
EXIT_PEER_LOST = 3  # a rank that stopped because another one did (the launcher reports the other one)


class PeerLostError(MgpeError):
    """This rank cannot go on because another process of the run stopped."""


@dataclass(frozen=True)
class World:
    """This process's place in the run: rank 0 alone writes checkpoints, samples and logs."""
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1

    @classmethod
    def from_env(cls) -> "World":
        """The world torchrun (or launch.py) describes in WORLD_SIZE, RANK, LOCAL_RANK; one process without them."""
        try:
            size = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
            local = int(os.environ.get("LOCAL_RANK", str(rank)))
        except ValueError:
            raise UsageError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (as torchrun sets them)") from None
        if size < 1 or not 0 <= rank < size:
            raise UsageError(f"RANK {rank} does not lie in a world of WORLD_SIZE {size}")
        return cls(rank, size, local)


def join(device: torch.device) -> tuple[World, torch.device]:
    """Join the run's process group when the environment names more than one process (nccl on CUDA, gloo on
    CPU); returns the world and this rank's device (cuda:LOCAL_RANK on GPUs)."""
    world = World.from_env()
    if not world.active:
        return world, device
    if device.type == "cuda":
        if world.local_rank >= torch.cuda.device_count():
            raise UsageError(f"LOCAL_RANK {world.local_rank}: this machine has {torch.cuda.device_count()} GPU(s)")
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        _JOINED.append(True)
        sys.excepthook = _exit_after(sys.excepthook)
    return world, device


def finish() -> None:
    """The end of a rank's part in a run (`mgpe train` calls it; a script that trains through the Python API under
    torchrun should too): wait for every rank (rank 0 may still be writing the last checkpoint), then leave the
    process group that `join` set up (one set up by the caller is left alone). Left to Python's teardown, gloo's
    group can abort the process (signal 6), which the launcher reports as that rank's failure."""
    if dist.is_available() and dist.is_initialized() and _JOINED:
        dist.barrier()
        dist.destroy_process_group()
        _JOINED.clear()


def exit_now(code: int) -> None:
    """End a rank of a run without Python's teardown: a process group's destructor, met while a peer still
    waits in a collective, can abort (signal 6) and hide why the rank stopped."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _exit_after(hook):
    """sys.excepthook for a rank: the traceback as usual, then exit_now(1)."""
    def report(kind, value, tb):
        hook(kind, value, tb)
        exit_now(1)
    return report


def share(batch: int, world: World) -> slice:
    """This rank's rows of a step's batch: consecutive blocks, rank 0's first. The batch itself is drawn whole
    from (seed, step), so step k trains on the same samples at any world size."""
    if batch % world.size:
        raise UsageError(f"batch {batch} does not split over {world.size} processes: use a multiple of {world.size}")
    n = batch // world.size
    return slice(world.rank * n, (world.rank + 1) * n)


def sync_batchnorm(module: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """Batch norm over the whole step's batch: torch's SyncBatchNorm on GPUs, ours on CPU (torch's refuses
    CPU tensors). Parameters and state_dict keys are unchanged."""
    if not world.active:
        return module
    if device.type == "cuda":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return convert(module)


class _Closure(torch.nn.Module):
    """Runs fn(*args) as its forward: a network used through several methods (encode, generate, fuse) passes
    through DistributedDataParallel's forward once per step, so all its gradients are averaged."""

    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self.module = module

    def forward(self, fn, *args):
        return fn(*args)


def _direct(fn, *args):
    return fn(*args)


def parallel(module: torch.nn.Module, world: World, device: torch.device, *, closure: bool = False):
    """`module` under DistributedDataParallel when the world is active (gradients averaged over ranks), else
    itself. closure=True: the result is called as f(fn, *args) and syncs the gradients of whatever fn computes
    with the module's parameters; static_graph: the parameters a step leaves unused (an ablation's) are found
    in the first step and must stay the same."""
    if not world.active:
        return _direct if closure else module
    import inspect

    from torch.nn.parallel import DistributedDataParallel

    # No buffer broadcast before each forward: batch-norm statistics are synced in the forward already, and every
    # rank starts from the same seed or checkpoint (torch 2.13 renamed the option).
    quiet = "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
    buffers = {"forward_sync_buffers": False} if quiet else {"broadcast_buffers": False}
    return DistributedDataParallel(_Closure(module) if closure else module,
                                   device_ids=[device] if device.type == "cuda" else None,
                                   static_graph=closure, **buffers)


def no_sync(module):
    """Within: backward leaves `module`'s gradients unsynced (the G step's gradients of D, which nobody uses)."""
    return module.no_sync() if hasattr(module, "no_sync") else nullcontext()


class _SumOverRanks(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad):  # every rank's loss depends on every rank's x
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        ctx.rows = x.shape[0]
        return torch.cat(parts, 0)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        start = dist.get_rank() * ctx.rows
        return grad[start:start + ctx.rows]


def sum_over_ranks(x: torch.Tensor, world: World) -> torch.Tensor:
    """The sum of x over ranks, differentiable (gradients flow back to every rank's x)."""
    return _SumOverRanks.apply(x) if world.active else x


def roll(x: torch.Tensor, shift: int, world: World) -> torch.Tensor:
    """torch.roll(·, shift, 0) over the whole step's batch, of which x (B/N, ...) holds this rank's rows: row i
    gets row i - shift of the batch, whichever rank holds it."""
    if not world.active:
        return torch.roll(x, shift, 0)
    n = x.shape[0]
    return torch.roll(_Gather.apply(x), shift, 0)[world.rank * n:(world.rank + 1) * n]


def batch_mean(total: torch.Tensor, weight: torch.Tensor, world: World) -> torch.Tensor:
    """total / weight over the whole step's batch, where this rank holds `total` (its sum) and `weight` (its
    denominator, e.g. the class weights of its pixels); scaled by N so DDP's average over ranks gives the
    batch's mean, not the mean of the ranks' means."""
    if not world.active:
        return total / weight
    weight = weight.detach().clone()
    dist.all_reduce(weight)
    return total * world.size / weight


def mean_over_ranks(values: torch.Tensor, world: World) -> torch.Tensor:
    """The mean over ranks of a vector of logged losses (no gradient): what one process at the whole batch
    would have logged."""
    if not world.active:
        return values
    values = values.detach().clone()
    dist.all_reduce(values)
    return values / world.size


def _lost_peer(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, getattr(dist, "DistError", ())) or any(
        s in text for s in ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "NCCL"))


@contextmanager
def stops_cleanly(world: World):
    """A rank whose peer died meets a communication error mid-step: one line saying so instead of a traceback;
    under launch.py it goes to the rank's log and the process exits at once with EXIT_PEER_LOST (the launcher
    reports the rank that failed first)."""
    try:
        yield
    except RuntimeError as exc:
        if not world.active or not _lost_peer(exc):
            raise
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        message = f"rank {world.rank}: another process of the run stopped ({first.strip()[:200]})"
        logs = os.environ.get(LAUNCH_LOGS)
        if logs:
            with (Path(logs) / f"rank-{world.rank}.log").open("a") as f:
                f.write(message + "\n")
            os._exit(EXIT_PEER_LOST)  # not sys.exit: a broken process group may abort in its destructor
        raise PeerLostError(message) from None


# -- batch norm over every rank's rows on CPU processes (gloo), where torch's SyncBatchNorm refuses to run
# (torch 2.13: "SyncBatchNorm expected input tensor to be on GPU"). It lets the CPU tests check that N processes
# train exactly like one; GPU runs use torch's SyncBatchNorm.
class GlooSyncBatchNorm(nn.BatchNorm2d):
    """nn.BatchNorm2d whose training-mode mean and variance are those of the whole step's batch (two passes:
    the mean, then the squared deviations, as precise as one process's batch norm). Same state_dict."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B/N, C, H, W)
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        world = World(dist.get_rank(), dist.get_world_size())
        dims = (0, 2, 3)
        count = float(x.numel() // x.shape[1]) * dist.get_world_size()  # every rank holds the same share
        mean = sum_over_ranks(x.sum(dims), world) / count
        centred = x - mean[None, :, None, None]
        var = sum_over_ranks(centred.pow(2).sum(dims), world) / count
        y = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * count / max(count - 1, 1), alpha=m)
        return y


def convert(module: nn.Module) -> nn.Module:
    """Every nn.BatchNorm2d in `module` replaced by GlooSyncBatchNorm sharing its parameters and buffers."""
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, GlooSyncBatchNorm):
        out = GlooSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                module.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        if module.track_running_stats:
            out.running_mean, out.running_var = module.running_mean, module.running_var
            out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
        return out
    for name, child in module.named_children():
        module.add_module(name, convert(child))
    return module
