"""Spectrally normalised kernels stored channels-last (``train.channels_last``): the same values,
gradients and power iteration as contiguous ones, without a copy of the kernel at any call."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from sislab.models.convs.scc import SemanticConditionalConv2d
from sislab.models.convs.spectral_norm import spectral_norm
from sislab.trainers.procedures.switches import to_channels_last


class _NewKernelSized(TorchDispatchMode):
    """Names the ops, convolutions aside, that allocate a tensor the size of the kernel."""

    def __init__(self, numel: int) -> None:
        super().__init__()
        self.numel, self.ops = numel, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {
            t.untyped_storage().data_ptr()
            for t in tree_leaves((args, kwargs))
            if isinstance(t, torch.Tensor)
        }
        for t in tree_leaves(out):
            if (
                isinstance(t, torch.Tensor)
                and t.numel() == self.numel
                and t.untyped_storage().data_ptr() not in inputs
                and "convolution" not in func.__name__
            ):
                self.ops.append(func.__name__)
        return out


def _conv(size: int) -> tuple[nn.Module, torch.Tensor, callable]:
    conv = spectral_norm(nn.Conv2d(8, 6, 3, padding=1)).double()
    return conv, torch.randn(2, 8, size, size, dtype=torch.float64), lambda m, x: m(x)


def _candidates(size: int) -> tuple[nn.Module, torch.Tensor, callable]:
    scc = SemanticConditionalConv2d(8, 6, num_candidates=3).double()
    vectors = torch.randn(2, 3, size, size, dtype=torch.float64)
    return scc, torch.randn(2, 8, size, size, dtype=torch.float64), lambda m, x: m(x, vectors)


# A 2x2 input: one image's output is smaller than the kernel (the output divided by sigma); 9x9:
# larger (the kernel divided).
CASES = {
    "conv, output divided": lambda: _conv(2),
    "conv, weight divided": lambda: _conv(9),
    "SCC candidates": lambda: _candidates(2),
}


def _kernel(module: nn.Module) -> torch.Tensor:
    return next(p for p in module.parameters() if p.dim() >= 4)


@pytest.mark.parametrize("case", list(CASES))
def test_channels_last_kernels_train_as_contiguous_ones_without_copies(case: str) -> None:
    torch.manual_seed(0)
    module, x, call = CASES[case]()
    twin = to_channels_last(copy.deepcopy(module))
    assert not _kernel(twin).is_contiguous()
    x_last = x.contiguous(memory_format=torch.channels_last)
    for _ in range(2):  # the second call reads the vectors the first one's iteration left
        counters = [_NewKernelSized(_kernel(module).numel()) for _ in range(2)]
        with counters[0]:
            out = call(module, x)
            out.backward(torch.ones_like(out))
        with counters[1]:
            out_last = call(twin, x_last)
            out_last.backward(torch.ones_like(out_last))
        # Only what the division by sigma makes on either layout (the weight divided: the
        # divided kernel and its gradients); no copy to torch's order and back.
        assert counters[1].ops == counters[0].ops
        torch.testing.assert_close(out_last, out, rtol=1e-12, atol=1e-12)
    for (name, value), twin_value in zip(module.named_parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(twin_value.grad, value.grad, rtol=1e-12, atol=1e-12, msg=name)
    for (name, value), twin_value in zip(module.named_buffers(), twin.buffers(), strict=True):
        torch.testing.assert_close(twin_value, value, rtol=1e-12, atol=1e-12, msg=name)
