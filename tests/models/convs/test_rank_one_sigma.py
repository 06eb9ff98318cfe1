"""Sigma and its weight in one autograd node: the same values and gradients as autograd's
``vdot(u, mv(W, v))`` (torch's spectral norm), whichever way the weight alias is used."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sislab.models.convs import rank_one_sigma
from sislab.models.convs.rank_one_sigma import weight_and_sigma


def _operands(groups: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    weight = torch.randn(groups * 6, 5, 3, 3, dtype=torch.float64)
    u = F.normalize(torch.randn(groups, 6, dtype=torch.float64), dim=1)
    v = F.normalize(torch.randn(groups, 45, dtype=torch.float64), dim=1)
    return weight, u, v


def _autograds_sigma(weight: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    matrix = weight.reshape(u.shape[0], u.shape[1], -1)
    return torch.stack([torch.vdot(u[g], torch.mv(matrix[g], v[g])) for g in range(u.shape[0])])


# How the caller uses the alias: a conv dividing its output (the conv's fresh gradient, updated
# in place), the weight divided (the division's gradient), the alias unused (sigma alone), and a
# use that hands back a non-contiguous gradient (the alias transposed).
USES = {
    "conv output / sigma": lambda w, s, x: (
        F.conv2d(x, w, padding=1) / s.view(1, -1, 1, 1).repeat_interleave(6, 1)
    ),
    "weight / sigma": lambda w, s, x: F.conv2d(x, w / s.repeat_interleave(6).view(-1, 1, 1, 1)),
    "sigma alone": lambda w, s, x: s.sum() * x.mean(),
    "transposed alias": lambda w, s, x: (w.transpose(0, 1) * s.sum()).sum() * x.mean(),
}


@pytest.mark.parametrize("block_elements", [None, 100])  # 100: two rows of 45 per block
@pytest.mark.parametrize("groups", [1, 3])
@pytest.mark.parametrize("use", list(USES))
def test_values_and_gradients_are_autograds(
    groups: int, use: str, block_elements: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if block_elements:
        monkeypatch.setattr(rank_one_sigma, "BLOCK_ELEMENTS", block_elements)
    weight, u, v = _operands(groups)
    x = torch.randn(2, 5, 7, 7, dtype=torch.float64)
    mine, theirs = weight.clone().requires_grad_(), weight.clone().requires_grad_()
    alias, sigma = weight_and_sigma(mine, u, v)
    reference_sigma = _autograds_sigma(theirs, u, v)
    assert torch.equal(sigma, reference_sigma)
    out, reference = USES[use](alias, sigma, x), USES[use](theirs, reference_sigma, x)
    torch.testing.assert_close(out, reference, rtol=0, atol=0)
    upstream = torch.randn_like(out)
    out.backward(upstream)
    reference.backward(upstream)
    # The same two terms, each rounded as autograd rounds them, added once: bit for bit.
    torch.testing.assert_close(mine.grad, theirs.grad, rtol=0, atol=0)


def test_second_order_gradients_are_autograds() -> None:
    # With create_graph the incoming gradient is part of a graph: added out of place.
    weight, u, v = _operands(1)
    x = torch.randn(1, 5, 4, 4, dtype=torch.float64)
    grads = []
    for fused in (True, False):
        w = weight.clone().requires_grad_()
        alias, sigma = weight_and_sigma(w, u, v) if fused else (w, _autograds_sigma(w, u, v))
        out = (F.conv2d(x, alias, padding=1) / sigma).pow(2).sum()
        (g,) = torch.autograd.grad(out, w, create_graph=True)
        (gg,) = torch.autograd.grad(g.pow(2).sum(), w)
        grads.append((g.detach(), gg))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_sigma_stays_in_the_weights_precision_under_autocast() -> None:
    weight, u, v = (t.float() for t in _operands(3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, sigma = weight_and_sigma(weight.requires_grad_(), u, v)
    assert sigma.dtype == torch.float32
    assert torch.equal(sigma, _autograds_sigma(weight.detach(), u, v))


def test_without_gradients_no_graph_is_built() -> None:
    weight, u, v = _operands(1)
    weight.requires_grad_()
    with torch.no_grad():
        alias, sigma = weight_and_sigma(weight, u, v)
    assert alias is weight and sigma.grad_fn is None
