"""Spectral norm applied separately to each candidate kernel of a stacked weight tensor."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from sislab.models.convs.rank_one_sigma import (
    from_columns,
    matrix_view,
    to_columns,
    weight_and_sigma,
)

# torch.nn.utils.spectral_norm defaults: one power iteration per training forward, eps 1e-12, and
# 15 iterations at registration so that sigma is accurate from the first step.
NUM_POWER_ITERATIONS = 1
NUM_INIT_ITERATIONS = 15
EPS = 1e-12


class GroupedSpectralNorm(nn.Module):
    """Divide each of the ``G`` kernels stacked along dim 0 by its own largest singular value.

    SC-GAN's code wraps each candidate conv in its own ``spectral_norm``; stacking the candidates
    into one tensor must keep one sigma per candidate, not one for the whole stack. Each group is a
    ``(rows, cols)`` matrix (rows = output channels of the candidate, cols = everything else),
    estimated by power iteration on each group exactly as ``torch.nn.utils.spectral_norm`` does per
    module (one iteration per forward in training mode, none in eval mode).

    Args:
        weight: The weight to normalise, shape ``(G, rows, ...)``.
        num_iterations: Power iterations per training forward.
    """

    def __init__(self, weight: torch.Tensor, num_iterations: int = NUM_POWER_ITERATIONS) -> None:
        super().__init__()
        self.num_groups = weight.shape[0]
        self.num_iterations = num_iterations
        weight = weight.detach()
        num_groups, rows = weight.shape[:2]
        u = F.normalize(weight.new_empty(num_groups, rows).normal_(), dim=1, eps=EPS)
        v = F.normalize(
            weight.new_empty(num_groups, weight[0, 0].numel()).normal_(), dim=1, eps=EPS
        )
        self.register_buffer("_u", u)
        self.register_buffer("_v", v)
        self._power_iteration(weight, NUM_INIT_ITERATIONS)

    @torch.no_grad()
    def _power_iteration(self, weight: torch.Tensor, num_iterations: int) -> None:
        # One matrix-vector product per group and direction (torch.mv on W_g and on its
        # transposed view), as torch.nn.utils.spectral_norm does per module: a batched bmm over
        # the transposed (G, cols, rows) view runs a strided batched GEMM ~5x slower on CPU.
        # Channels-last kernels are read in their memory order (rank_one_sigma.matrix_view), v
        # reordered to match and back.
        matrix = matrix_view(weight, self.num_groups, weight.shape[1])
        u, v = list(self._u.unbind(0)), list(to_columns(self._v, weight).unbind(0))
        for g, kernels in enumerate(matrix.unbind(0)):
            for _ in range(num_iterations):
                v[g] = F.normalize(torch.mv(kernels.t(), u[g]), dim=0, eps=EPS)
                u[g] = F.normalize(torch.mv(kernels, v[g]), dim=0, eps=EPS)
        self._u, self._v = torch.stack(u), from_columns(torch.stack(v), weight)

    def weight_and_sigma(self, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weight alias, sigma)`` with ``sigma_g = u_g^T W_g v_g`` per group, shape ``(G,)``,
        after the power iteration (training mode); use the alias, so that the sigmas'
        gradients join the weight's (``rank_one_sigma.py``)."""
        if self.training:
            self._power_iteration(weight.detach(), self.num_iterations)
        # Clones: the buffers are updated in place on the next forward, autograd must not see it.
        return weight_and_sigma(weight, self._u.clone(), self._v.clone())

    def forward(
        self, weight: torch.Tensor, undivided: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Return ``weight`` with group ``g`` divided by ``sigma_g``, or (``undivided``) the
        weight and the ``(G,)`` sigmas apart: a caller that divides something smaller than the
        weight (SCC's mixing vectors) asks through the module call, so that hooks on the norm
        see every call."""
        alias, sigma = self.weight_and_sigma(weight)
        if undivided:
            return alias, sigma
        return alias / sigma.view(-1, *([1] * (weight.dim() - 1)))


def grouped_spectral_norm(module: nn.Module, name: str) -> nn.Module:
    """Register :class:`GroupedSpectralNorm` on ``module.<name>`` (a ``(G, rows, ...)`` tensor).

    Args:
        module: Module owning the parameter.
        name: Name of the stacked weight parameter.

    Returns:
        ``module``, whose ``name`` attribute is now the normalised weight and whose trainable
        tensor is ``module.parametrizations.<name>.original``.
    """
    weight = getattr(module, name)
    parametrize.register_parametrization(module, name, GroupedSpectralNorm(weight))
    return module
