"""GroupedSpectralNorm: the per-group ``torch.mv`` power iteration equals the batched one it
replaced (u, v, sigma, normalised weight and gradients), and sigma is each group's own norm."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from sislab.models.convs.grouped_spectral_norm import (
    EPS,
    NUM_INIT_ITERATIONS,
    GroupedSpectralNorm,
    grouped_spectral_norm,
)


class BatchedReference(nn.Module):
    """The previous implementation (batched ``bmm`` on the transposed view, 3-operand einsum),
    kept here as the reference the package's version must reproduce."""

    def __init__(self, weight: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> None:
        super().__init__()
        self.num_groups = weight.shape[0]
        self.register_buffer("_u", u.clone())
        self.register_buffer("_v", v.clone())
        self._power_iteration(self._as_matrix(weight.detach()), NUM_INIT_ITERATIONS)

    def _as_matrix(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.reshape(self.num_groups, weight.shape[1], -1)

    @torch.no_grad()
    def _power_iteration(self, matrix: torch.Tensor, num_iterations: int) -> None:
        for _ in range(num_iterations):
            self._v = F.normalize(
                torch.bmm(matrix.transpose(1, 2), self._u.unsqueeze(2)).squeeze(2), dim=1, eps=EPS
            )
            self._u = F.normalize(
                torch.bmm(matrix, self._v.unsqueeze(2)).squeeze(2), dim=1, eps=EPS
            )

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        matrix = self._as_matrix(weight)
        if self.training:
            self._power_iteration(matrix.detach(), 1)
        u, v = self._u.clone(), self._v.clone()
        sigma = torch.einsum("gr,grc,gc->g", u, matrix, v)
        return weight / sigma.view(-1, *([1] * (weight.dim() - 1)))


def _pair(shape: tuple[int, ...]) -> tuple[GroupedSpectralNorm, BatchedReference, torch.Tensor]:
    torch.manual_seed(0)
    weight = torch.randn(*shape)
    new = GroupedSpectralNorm(weight)
    # The reference starts from the same random u, v (drawn before the init iterations).
    torch.manual_seed(0)
    torch.randn(*shape)
    matrix = weight.reshape(shape[0], shape[1], -1)
    u = F.normalize(matrix.new_empty(shape[0], shape[1]).normal_(), dim=1, eps=EPS)
    v = F.normalize(matrix.new_empty(shape[0], matrix.shape[2]).normal_(), dim=1, eps=EPS)
    return new, BatchedReference(weight, u, v), weight


@pytest.mark.parametrize("shape", [(3, 512, 512, 3, 3), (4, 16, 8, 3, 3), (2, 7, 5)])
def test_matches_the_batched_implementation(shape: tuple[int, ...]) -> None:
    new, reference, weight = _pair(shape)
    tolerance = {"atol": 1e-5, "rtol": 1e-4}
    torch.testing.assert_close(new._u, reference._u, **tolerance)
    torch.testing.assert_close(new._v, reference._v, **tolerance)
    for step in range(3):  # training forwards: one power iteration each, then gradients
        w_new = weight.detach().clone().requires_grad_()
        w_ref = weight.detach().clone().requires_grad_()
        out_new, out_ref = new(w_new), reference(w_ref)
        torch.testing.assert_close(out_new, out_ref, **tolerance)
        sigmas = [  # sigma_g = ||W_g|| / ||W_g / sigma_g||
            weight.reshape(shape[0], -1).norm(dim=1)
            / out.detach().reshape(shape[0], -1).norm(dim=1)
            for out in (out_new, out_ref)
        ]
        torch.testing.assert_close(sigmas[0], sigmas[1], **tolerance)
        torch.testing.assert_close(new._u, reference._u, **tolerance)
        torch.testing.assert_close(new._v, reference._v, **tolerance)
        upstream = torch.randn_like(out_new, generator=torch.Generator().manual_seed(step))
        (out_new * upstream).sum().backward()
        (out_ref * upstream).sum().backward()
        torch.testing.assert_close(w_new.grad, w_ref.grad, **tolerance)
        weight = weight + 0.01 * upstream  # the weight moves between steps, as in training
    new.eval(), reference.eval()
    frozen_u = new._u.clone()
    torch.testing.assert_close(new(weight), reference(weight), **tolerance)
    assert torch.equal(new._u, frozen_u), "eval mode must not iterate"


def test_sigma_is_each_groups_largest_singular_value() -> None:
    torch.manual_seed(0)
    module = nn.Module()
    module.weight = nn.Parameter(
        torch.randn(3, 6, 4, 3, 3) * torch.tensor([1.0, 5.0, 0.2])[:, None, None, None, None]
    )
    grouped_spectral_norm(module, "weight")
    assert parametrize.is_parametrized(module, "weight")
    for _ in range(30):
        module.weight  # noqa: B018 (each access of a training parametrisation iterates once)
    sigmas = torch.linalg.matrix_norm(module.weight.detach().reshape(3, 6, -1), ord=2)
    torch.testing.assert_close(sigmas, torch.ones(3), atol=1e-3, rtol=0)
