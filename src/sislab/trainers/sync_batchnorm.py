"""Batch norm with statistics shared across DDP ranks, on CPU (gloo) as well as GPU (nccl).

``torch.nn.SyncBatchNorm`` refuses CPU tensors, yet SPADE-family methods train with synchronised
batch statistics (SPADE code: ``spadesyncbatch3x3``) and sislab must behave the same on gloo. On
GPU the fused ``torch.nn.SyncBatchNorm`` is used; elsewhere ``CrossRankBatchNorm2d`` all-reduces
the per-channel sums with autograd-aware collectives.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.nn.functional import all_reduce


class CrossRankBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics are the mean/variance over all ranks' batches."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        if dist.get_world_size() == 1:
            return super().forward(x)
        dims = (0, 2, 3)
        count = torch.tensor(
            [x.shape[0] * x.shape[2] * x.shape[3]], device=x.device, dtype=torch.float32
        )
        stats = torch.cat([x.sum(dims), (x * x).sum(dims), count.to(x.dtype)])
        stats = all_reduce(stats)  # autograd-aware sum over ranks
        channels = x.shape[1]
        total = stats[-1]
        mean = stats[:channels] / total
        var = stats[channels : 2 * channels] / total - mean * mean
        with torch.no_grad():
            if self.track_running_stats and self.running_mean is not None:
                self.num_batches_tracked += 1
                momentum = self.momentum if self.momentum is not None else 0.1
                unbiased = var.detach() * total / torch.clamp(total - 1, min=1)
                self.running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
                self.running_var.mul_(1 - momentum).add_(momentum * unbiased)
        y = (x - mean[None, :, None, None]) * torch.rsqrt(var[None, :, None, None] + self.eps)
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Replace every ``BatchNorm2d`` in ``module`` by its cross-rank version for ``device``.

    Args:
        module: Model whose batch norms should share statistics across ranks.
        device: Training device; CUDA under NCCL uses ``torch.nn.SyncBatchNorm`` (its
            all-gather needs NCCL; ranks sharing one GPU run gloo and the cross-rank version).

    Returns:
        The converted module (a new object where the root itself was a batch norm).
    """
    backend = dist.get_backend() if dist.is_available() and dist.is_initialized() else "nccl"
    if device.type == "cuda" and backend == "nccl":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert_cpu(module)


def _convert_cpu(module: nn.Module) -> nn.Module:
    out = module
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, CrossRankBatchNorm2d):
        out = CrossRankBatchNorm2d(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
        )
        out.load_state_dict(module.state_dict())
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, _convert_cpu(child))
    return out
