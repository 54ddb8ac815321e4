"""Batch norm with statistics over every rank's rows on CPU processes (gloo), where torch's SyncBatchNorm
refuses to run (torch 2.13: "SyncBatchNorm expected input tensor to be on GPU"). It lets the CPU tests check
that N processes train exactly like one; GPU runs use torch's SyncBatchNorm."""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from .ddp import World, sum_over_ranks


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

