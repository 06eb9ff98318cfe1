"""Convolutions as a product of unfolded patches (``train.unfolded_convs``): torch's values and
gradients, in the layouts the tensors came in, only where the rule picks them."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sislab.models.convs.spectral_norm import spectral_norm
from sislab.models.convs.unfolded_conv import (
    prefers_unfolded,
    unfolded_conv2d,
    use_unfolded_convs,
)

CASES = list(
    itertools.product(
        [1, 2],  # batch
        [1, 3, 4],  # kernel size
        [(0, 0), (1, 1), (2, 1)],  # padding
        [False, True],  # input channels-last
        [False, True],  # kernel channels-last
        [False, True],  # bias
    )
)


def _layout(t: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return t.contiguous(
        memory_format=torch.channels_last if channels_last else torch.contiguous_format
    )


@pytest.mark.parametrize(("batch", "k", "padding", "x_last", "w_last", "bias"), CASES)
def test_values_and_gradients_equal_torchs_conv(batch, k, padding, x_last, w_last, bias) -> None:
    torch.manual_seed(0)
    x = _layout(torch.randn(batch, 3, 5, 7, dtype=torch.float64), x_last).requires_grad_()
    w = _layout(torch.randn(4, 3, k, k, dtype=torch.float64), w_last).requires_grad_()
    b = torch.randn(4, dtype=torch.float64, requires_grad=True) if bias else None
    inputs = [t for t in (x, w, b) if t is not None]
    expected = F.conv2d(x, w, b, padding=padding)
    got = unfolded_conv2d(x, w, b, padding)
    grad = torch.randn_like(expected)
    expected_grads = torch.autograd.grad(expected, inputs, grad)
    got_grads = torch.autograd.grad(got, inputs, grad)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)
    for name, g, e in zip("xwb", got_grads, expected_grads, strict=False):
        torch.testing.assert_close(g, e, atol=1e-12, rtol=0, msg=name)
    # Layouts kept: the output as the input (the next layer reads it so), each gradient as
    # its tensor (a kernel's gradient in another layout would be restrided before Adam's step).
    layout = torch.channels_last if x_last else torch.contiguous_format
    assert got.is_contiguous(memory_format=layout)
    assert got_grads[0].stride() == x.stride()
    assert got_grads[1].stride() == w.stride()


def test_float32_within_rounding_of_onednn() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 256, 4, 8).contiguous(memory_format=torch.channels_last)
    w = torch.randn(256, 256, 3, 3).mul_(0.02).contiguous(memory_format=torch.channels_last)
    expected, got = F.conv2d(x, w, padding=1), unfolded_conv2d(x, w, None, (1, 1))
    torch.testing.assert_close(got, expected, atol=1e-5 * expected.abs().max().item(), rtol=0)


def test_double_backward_is_refused() -> None:
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    (gx,) = torch.autograd.grad(unfolded_conv2d(x, w).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match=r"once_differentiable|does not require grad"):
        gx.sum().backward()


def _big(h: int, w: int, c: int = 1024, o: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.empty(1, c, h, w), torch.empty(o, c, 3, 3)


def test_the_rule_picks_large_kernels_over_few_positions() -> None:
    # 1024 -> 1024 channels (9.4M weights): at 4x8 (32 positions) and 8x16 (128), not at 32x64.
    assert prefers_unfolded(*_big(4, 8), (1, 1))
    assert prefers_unfolded(*_big(8, 16), (1, 1))
    assert not prefers_unfolded(*_big(32, 64), (1, 1))
    # 512 -> 512 (2.4M weights): oneDNN's at any size.
    assert not prefers_unfolded(*_big(4, 8, 512, 512), (1, 1))
    x, w = _big(4, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not prefers_unfolded(x, w, (1, 1))
    assert not prefers_unfolded(x.half(), w.half(), (1, 1))
    # Positions of the whole batch count: 4 images at 8x16 are 512 positions.
    assert not prefers_unfolded(torch.empty(4, 1024, 8, 16), w, (1, 1))


def _unfolded_calls(module: nn.Module, x: torch.Tensor) -> list[bool]:
    calls: list[bool] = []
    for sub in module.modules():
        if isinstance(sub, nn.Conv2d):
            sub.register_forward_hook(
                lambda m, a, out: calls.append("Unfolded" in type(out.grad_fn).__name__)
            )
    module(x)
    return calls


def test_layers_switched_in_place_compute_torchs_values() -> None:
    torch.manual_seed(0)
    plain = nn.Sequential(
        spectral_norm(nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect")),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.Conv2d(8, 8, 3, stride=2, padding=1),  # strided: torch's
        nn.Conv2d(8, 8, 3, padding=1, groups=2),  # grouped: torch's
    ).double()
    switched = copy.deepcopy(plain)
    assert use_unfolded_convs(switched, min_weights=0, weights_per_position=0) == 2
    assert set(plain.state_dict()) == set(switched.state_dict())
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(switched.eval()(x), plain.eval()(x), atol=1e-12, rtol=0)
    assert _unfolded_calls(switched.train(), x.requires_grad_()) == [True, True, False, False]
    # With the default limits these small kernels stay torch's.
    default = copy.deepcopy(plain)
    use_unfolded_convs(default)
    assert _unfolded_calls(default, x) == [False] * 4


def test_a_reflect_padded_layer_counts_its_padded_output() -> None:
    # 576 weights; a 6x6 input reflect-padded by 1 gives 36 positions (16 unpadded): at 20
    # weights per position the rule wants 720, so torch's convolution runs.
    conv = nn.Conv2d(8, 8, 3, padding=1, padding_mode="reflect")
    use_unfolded_convs(conv, min_weights=0, weights_per_position=20)
    assert _unfolded_calls(conv, torch.randn(1, 8, 6, 6, requires_grad=True)) == [False]
    use_unfolded_convs(conv, min_weights=0, weights_per_position=16)  # 576 for 36: unfolded
    assert _unfolded_calls(conv, torch.randn(1, 8, 6, 6, requires_grad=True))[-1] is True


def test_a_deep_copy_runs_its_own_layer() -> None:
    # OASIS's EMA generator is a deep copy: its switched layers must be bound to the copy.
    conv = nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect")
    use_unfolded_convs(conv, min_weights=0, weights_per_position=0)
    twin = copy.deepcopy(conv)
    twin.padding_mode = "zeros"
    assert twin._conv_forward.__self__ is twin
    x = torch.randn(1, 2, 4, 4)
    torch.testing.assert_close(twin(x), F.conv2d(x, twin.weight, twin.bias, padding=1))
