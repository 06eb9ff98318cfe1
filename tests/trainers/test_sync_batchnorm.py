"""Cross-rank batch norm on CPU (gloo): two ranks with half batches equal one full-batch BN."""

from __future__ import annotations

import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from sislab.trainers.sync_batchnorm import CrossRankBatchNorm2d, convert_sync_batchnorm


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, port: int, x: torch.Tensor, results) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    torch.manual_seed(0)
    bn = convert_sync_batchnorm(nn.Sequential(nn.BatchNorm2d(3)), torch.device("cpu"))
    part = x[rank * 2 : rank * 2 + 2].clone().requires_grad_(True)
    out = bn(part)
    (out * torch.arange(out.numel()).reshape(out.shape)).sum().backward()
    results[rank] = (out.detach(), part.grad, bn[0].running_mean.clone(), bn[0].running_var.clone())
    dist.destroy_process_group()


def test_two_ranks_match_full_batch() -> None:
    torch.manual_seed(1)
    x = torch.randn(4, 3, 5, 5) * 2 + 1
    results = mp.Manager().dict()
    mp.spawn(_worker, args=(_free_port(), x, results), nprocs=2, join=True)

    reference = nn.BatchNorm2d(3)
    full = x.clone().requires_grad_(True)
    out = reference(full)
    weights = torch.cat(
        [torch.arange(50 * 3).reshape(2, 3, 5, 5).float()] * 2
    )  # each rank weighted its own half with arange
    (out * weights).sum().backward()
    got = torch.cat([results[0][0], results[1][0]])
    grads = torch.cat([results[0][1], results[1][1]])
    torch.testing.assert_close(got, out.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads, full.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(results[0][2], reference.running_mean)
    torch.testing.assert_close(results[0][3], reference.running_var)


def test_conversion_keeps_state_and_is_plain_without_process_group() -> None:
    bn = nn.BatchNorm2d(2)
    bn.running_mean.fill_(3.0)
    converted = convert_sync_batchnorm(nn.Sequential(bn), torch.device("cpu"))
    assert isinstance(converted[0], CrossRankBatchNorm2d)
    assert torch.equal(converted[0].running_mean, torch.full((2,), 3.0))
    x = torch.randn(2, 2, 3, 3)
    torch.testing.assert_close(converted[0](x), nn.BatchNorm2d(2)(x))
