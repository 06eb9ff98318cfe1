"""Spectral norm's power iteration outside the compiled graph: a network called three times
before one backward (OASIS's D step) trains the same compiled as torch's eager spectral norm."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.parametrizations import _SpectralNorm, spectral_norm

from sislab.models.convs.spectral_norm import SpectralNorm
from sislab.trainers.procedures.eager_power_iteration import power_iterations_outside_graph

TOLERANCE = {"atol": 1e-5, "rtol": 1e-4}


def _critic() -> nn.Module:
    torch.manual_seed(0)
    # A 1x1 conv on 3 channels: its v has 3 elements, the buffer pytorch#185497 trips on.
    return nn.Sequential(
        spectral_norm(nn.Conv2d(3, 4, 1)),
        nn.LeakyReLU(0.2),
        spectral_norm(nn.Conv2d(4, 4, 3, padding=1)),
        nn.Flatten(),
        spectral_norm(nn.Linear(4 * 8 * 8, 1)),
    )


def _d_steps(net: nn.Module, steps: int) -> list[torch.Tensor]:
    # Like OASIS's D step: fake, real and a mix through D, one backward, one Adam step; then
    # a G-step-like training call and an eval call (no power iteration).
    torch.manual_seed(1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        net.train()
        fake, real = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
        loss = net(fake).mean() - net(real).mean() + net(0.5 * (fake + real)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.detach())
        with torch.no_grad():
            losses.append(net(fake).sum())
            net.eval()
            losses.append(net(real).sum())
    return losses


def _as_sislabs(net: nn.Module) -> nn.Module:
    """torch's spectral norms as sislab's class, which adds sigma's gradient into the weight's
    in one node: the same terms as torch's backward, summed in another order when a weight
    serves several calls before one backward."""
    for module in net.modules():
        if isinstance(module, _SpectralNorm):
            module.__class__ = SpectralNorm
    return net


def test_eager_results_are_bit_for_bit_those_in_the_graph() -> None:
    reference, moved = _as_sislabs(_critic()), _critic()
    assert power_iterations_outside_graph(moved) == 3
    assert moved.state_dict().keys() == reference.state_dict().keys()  # checkpoints unchanged
    for new, old in zip(_d_steps(moved, 3), _d_steps(reference, 3), strict=True):
        torch.testing.assert_close(new, old, atol=0, rtol=0)
    for key, value in reference.state_dict().items():  # weights and u, v
        torch.testing.assert_close(moved.state_dict()[key], value, atol=0, rtol=0, msg=key)


def test_eager_results_are_torchs_to_rounding() -> None:
    reference, moved = _critic(), _critic()
    power_iterations_outside_graph(moved)
    for new, old in zip(_d_steps(moved, 3), _d_steps(reference, 3), strict=True):
        torch.testing.assert_close(new, old, rtol=1e-5, atol=1e-7)


def test_compiled_with_three_calls_before_backward_equals_eager() -> None:
    reference = _critic()
    compiled = copy.deepcopy(reference)
    power_iterations_outside_graph(compiled)
    compiled.compile()
    new_losses = _d_steps(compiled, 2)
    with torch._dynamo.config.patch(error_on_recompile=True):  # buffers replaced, not guarded
        new_losses += _d_steps(compiled, 1)
    old_losses = _d_steps(reference, 2) + _d_steps(reference, 1)
    for new, old in zip(new_losses, old_losses, strict=True):
        torch.testing.assert_close(new, old, **TOLERANCE)
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(compiled.state_dict()[key], value, **TOLERANCE, msg=key)
