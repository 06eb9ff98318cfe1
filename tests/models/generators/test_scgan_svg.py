"""SC-GAN's SVG: per-stage semantic vectors, nonlinearities, channel-group pooling, pyramid."""

from __future__ import annotations

from typing import get_args

import pytest
import torch
import torch.nn.functional as F

from sislab.models.generators.scgan_svg import (
    POSITION_SIGMA,
    POSITION_WINDOW,
    ChannelGroupPool,
    Nonlinearity,
    SemanticVectorGenerator,
    apply_nonlinearity,
)


def _semantics(classes: int = 5, size: int = 64) -> torch.Tensor:
    labels = torch.randint(0, classes, (2, size, size))
    return torch.nn.functional.one_hot(labels, classes).permute(0, 3, 1, 2).float()


def test_softmax_with_large_tau_is_one_hot_and_small_tau_uniform() -> None:
    torch.manual_seed(0)
    raw = torch.randn(2, 4, 3, 3)
    # Eq. 2 and the code multiply by tau, so tau -> inf is the sharp (argmax) limit.
    sharp = apply_nonlinearity(raw, "softmax", temperature=1e4)
    expected = torch.nn.functional.one_hot(raw.argmax(1), 4).permute(0, 3, 1, 2).float()
    torch.testing.assert_close(sharp, expected)
    smooth = apply_nonlinearity(raw, "softmax", temperature=1e-6)
    torch.testing.assert_close(smooth, torch.full_like(raw, 0.25))


@pytest.mark.parametrize("nonlinearity", get_args(Nonlinearity))
def test_nonlinearity_applies_g_to_tau_times_v(nonlinearity: Nonlinearity) -> None:
    raw = torch.linspace(-40, 40, 24).view(1, 3, 2, 4)
    out = apply_nonlinearity(raw, nonlinearity, temperature=0.05)
    x = raw * 0.05
    expected = {
        "softmax": torch.softmax(x, 1),
        "sigmoid": torch.sigmoid(x),
        "tanh": torch.tanh(x),
        "relu": torch.relu(x),
        "hardtanh": x.clamp(-1, 1),
        "none": x,
    }[nonlinearity]
    torch.testing.assert_close(out, expected)


def test_channel_group_pool_averages_contiguous_possibly_overlapping_groups() -> None:
    x = torch.arange(4.0).view(1, 4, 1, 1).expand(1, 4, 2, 2)
    halves, thirds = ChannelGroupPool(4, 2, 3)(x)
    torch.testing.assert_close(halves[0, :, 0, 0], torch.tensor([0.5, 2.5]))
    # 4 channels into 3 groups: [0, 1], [1, 2], [2, 3] (adaptive pooling bins overlap).
    torch.testing.assert_close(thirds[0, :, 0, 0], torch.tensor([0.5, 1.5, 2.5]))


@pytest.mark.parametrize("channels", [5, 32, 512])
def test_channel_group_pool_equals_the_codes_adaptive_pooling(channels: int) -> None:
    # The previous implementation (and SC-GAN's enc2weight): adaptive_avg_pool3d per count.
    torch.manual_seed(0)
    x = torch.randn(2, channels, 6, 10, dtype=torch.float64, requires_grad=True)
    counts = (3, 4)
    upstream = [torch.randn(2, n, 6, 10, dtype=torch.float64) for n in counts]
    pool = ChannelGroupPool(channels, *counts).double()
    pooled = pool(x)
    new_loss = sum((p * u).sum() for p, u in zip(pooled, upstream, strict=True))
    (new_grad,) = torch.autograd.grad(new_loss, x)
    reference = [F.adaptive_avg_pool3d(x.unsqueeze(1), (n, 6, 10)).squeeze(1) for n in counts]
    loss = sum((r * u).sum() for r, u in zip(reference, upstream, strict=True))
    (old_grad,) = torch.autograd.grad(loss, x)
    for new, old in zip(pooled, reference, strict=True):
        torch.testing.assert_close(new, old, rtol=0, atol=1e-12)
    torch.testing.assert_close(new_grad, old_grad, rtol=0, atol=1e-12)
    # float32, as trained: within rounding of the other summation order.
    x32 = x.detach().float()
    for new, n in zip(pool.float()(x32), counts, strict=True):
        old = F.adaptive_avg_pool3d(x32.unsqueeze(1), (n, 6, 10)).squeeze(1)
        torch.testing.assert_close(new, old, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("nonlinearity", get_args(Nonlinearity))
@pytest.mark.parametrize("num_stages", [6, 7])
def test_stage_shapes_at_64(nonlinearity: Nonlinearity, num_stages: int) -> None:
    torch.manual_seed(0)
    svg = SemanticVectorGenerator(5, 4, num_stages, 3, 2, 0.05, nonlinearity)
    out = svg(_semantics())
    sizes = [64 // 2 ** (num_stages - 1 - t) for t in range(num_stages)]
    assert [v.shape for v in out.conv_vectors] == [(2, 3, s, s) for s in sizes]
    assert [v.shape for v in out.norm_vectors] == [(2, 2, s, s) for s in sizes]
    assert out.image.shape == (2, 3, 64, 64)
    assert out.image.abs().max() <= 1.0
    if nonlinearity == "softmax":
        torch.testing.assert_close(out.conv_vectors[-1].sum(1), torch.ones(2, 64, 64))


def test_stage_widths_follow_the_code() -> None:
    svg = SemanticVectorGenerator(7, 2, 7, 3, 3, 0.05, use_spectral_norm=False)
    first_convs = [stage[0 if t == 0 else 1] for t, stage in enumerate(svg.stages)]
    assert [c.in_channels for c in first_convs] == [7, 32 + 7, 16 + 7, 8 + 7, 4 + 7, 2 + 7, 2 + 7]
    assert [c.out_channels for c in first_convs] == [32, 16, 8, 4, 2, 2, 2]
    assert svg.to_rgb[0].out_channels == 1


def test_position_encoding_grows_towards_region_interiors() -> None:
    svg = SemanticVectorGenerator(2, 4, 6, 3, 3, 0.05, use_position_encoding=True)
    semantics = torch.zeros(1, 2, 64, 64)
    semantics[:, 0, :, :32] = 1
    semantics[:, 1, :, 32:] = 1
    finest = svg.label_pyramid(semantics)[-1]
    gauss_1d = sum(
        torch.exp(torch.tensor(-((i - POSITION_WINDOW // 2) ** 2) / (2 * POSITION_SIGMA**2)))
        for i in range(POSITION_WINDOW)
    )
    torch.testing.assert_close(finest[0, 0, 32, 16], gauss_1d**2)
    assert finest[0, 0, 32, 31] < finest[0, 0, 32, 16]
    assert finest[0, 1, 32, 16] == 0
