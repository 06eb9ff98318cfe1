"""SC-GAN's spatially (semantic-) conditional normalisation, SCN (Wang et al., ICCV 2021, Eq. 5)."""

from __future__ import annotations

import torch
from torch import nn

from sislab.models.norms.modulation import modulate
from sislab.models.norms.spade import ParamFreeNorm, param_free_norm


class SemanticConditionalNorm(nn.Module):
    """Parameter-free norm, then a per-pixel mixture of ``n`` candidate (scale, shift) vectors.

    ``out = norm(x) * (1 + gamma) + beta`` with ``[gamma; beta](r, c) = sum_i V[i, r, c] a_i`` and
    a learnable table ``a`` of shape ``(n, 2C)`` initialised to 0 (code ``SpatialCondNorm``:
    ``affine_params_groups``). The paper writes ``norm(x) * s_hat + m_hat`` with
    ``s_hat = sum_i V_i s_i``, ``m_hat = sum_i V_i m_i`` and ``s_i`` initialised to 1, ``m_i`` to 0.
    Both are the same family with ``s_i = 1 + gamma_i`` and the same initial function whenever
    ``sum_i V_i = 1`` (softmax, SC-GAN's choice); with un-normalised V (sigmoid, tanh, relu, none)
    the code's ``1 +`` keeps a unit scale at init where the paper's form would scale by
    ``sum_i V_i``. The code's form is used.

    Args:
        num_channels: Channels C of the activation.
        num_candidates: Number n of candidate (scale, shift) pairs (= channels of V).
        param_free: ``batch`` (code: SynchronizedBatchNorm, ``sccsyncbatch3x3``; the trainer
            converts BatchNorm2d to SyncBatchNorm) or ``instance``.

    Shapes:
        ``forward(x (B, C, H, W), vectors (B, n, H, W)) -> (B, C, H, W)``.
    """

    def __init__(
        self, num_channels: int, num_candidates: int, param_free: ParamFreeNorm = "batch"
    ) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.num_candidates = num_candidates
        self.param_free_norm = param_free_norm(param_free, num_channels)
        self.affine_candidates = nn.Parameter(torch.zeros(num_candidates, 2 * num_channels))

    def forward(
        self, x: torch.Tensor, vectors: torch.Tensor, negative_slope: float | None = None
    ) -> torch.Tensor:
        """Normalise ``x`` and modulate it with the V-mixed candidate scales and shifts.

        ``negative_slope``: the leaky ReLU the block applies next, fused with the modulation
        (``modulation.modulate``); None returns the pre-activation.
        """
        if vectors.shape[1] != self.num_candidates or vectors.shape[2:] != x.shape[2:]:
            raise ValueError(
                f"semantic vectors of shape {tuple(vectors.shape)} do not match "
                f"{self.num_candidates} candidates at {tuple(x.shape[2:])}"
            )
        affine = torch.einsum("bnhw,nc->bchw", vectors, self.affine_candidates)
        gamma, beta = affine.split(self.num_channels, dim=1)
        return modulate(self.param_free_norm, x, gamma, beta, negative_slope)
