"""Instance norm on channels-last activations (``train.channels_last``): torch's values and
gradients, the activation kept in its layout, NCHW inputs on torch's own path."""

from __future__ import annotations

import copy

import torch
from torch import nn

from sislab.models.norms.channels_last_instance_norm import (
    ChannelsLastInstanceNorm2d,
    use_channels_last_instance_norms,
)
from sislab.models.norms.modulation import stateless_norm


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(2, 16, 9, 7, dtype=torch.float64) * 3 + 1
    return x, torch.randn_like(x)


def test_nhwc_input_gives_instance_norms_values_and_gradients_in_nhwc() -> None:
    x, upstream = _inputs()
    ours = ChannelsLastInstanceNorm2d(16)
    x_last = x.clone().contiguous(memory_format=torch.channels_last).requires_grad_()
    x_ref = x.clone().requires_grad_()
    out, reference = ours(x_last), nn.InstanceNorm2d(16)(x_ref)
    assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
    torch.testing.assert_close(out, reference, rtol=1e-12, atol=1e-12)
    out.backward(upstream)
    reference.backward(upstream)
    assert x_last.grad.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(x_last.grad, x_ref.grad, rtol=1e-12, atol=1e-12)


def test_nchw_input_takes_torchs_instance_norm_bit_for_bit() -> None:
    x, _ = _inputs()
    assert torch.equal(ChannelsLastInstanceNorm2d(16)(x), nn.InstanceNorm2d(16)(x))


def test_only_instance_norms_without_state_are_turned_and_stay_stateless() -> None:
    net = nn.Sequential(
        nn.InstanceNorm2d(4),
        nn.InstanceNorm2d(4, affine=True),
        nn.InstanceNorm2d(4, track_running_stats=True),
        nn.BatchNorm2d(4),
    )
    before = copy.deepcopy(net.state_dict())
    assert use_channels_last_instance_norms(net) == 1
    assert [type(m) for m in net] == [
        ChannelsLastInstanceNorm2d,
        nn.InstanceNorm2d,
        nn.InstanceNorm2d,
        nn.BatchNorm2d,
    ]
    assert net.state_dict().keys() == before.keys()
    # The fused modulation recomputes it in its backward (modulation.stateless_norm).
    x = torch.randn(1, 4, 5, 5).contiguous(memory_format=torch.channels_last)
    recompute = stateless_norm(net[0])
    assert recompute is not None and torch.equal(recompute(x), net[0](x))
