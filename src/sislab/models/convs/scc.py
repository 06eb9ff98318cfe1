"""SC-GAN's spatially (semantic-) conditional convolution, SCC (Wang et al., ICCV 2021, Eq. 4)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from sislab.models.convs.grouped_spectral_norm import grouped_spectral_norm
from sislab.models.convs.spectral_norm import divides_output, weight_and_sigma_of

# SC-GAN code (SpatialCondConv2d): each candidate gets xavier_normal_(gain=0.02), the generator's
# init_variance, with the fans of ONE candidate conv (C_in k k, C_out k k).
INIT_GAIN = 0.02


def init_candidates(weight: torch.Tensor, gain: float = INIT_GAIN) -> None:
    """Xavier-normal init of a ``(n, C_out, C_in, k, k)`` stack, with one candidate's fans.

    Args:
        weight: The stacked candidate kernels, modified in place.
        gain: Xavier gain.
    """
    receptive = weight[0, 0, 0].numel()
    fan_in, fan_out = weight.shape[2] * receptive, weight.shape[1] * receptive
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    with torch.no_grad():
        weight.normal_(0.0, std)


class SemanticConditionalConv2d(nn.Module):
    """Per-pixel mixture of n candidate kernels: ``out[r, c] = sum_i V[i, r, c] (k_i * F)[r, c]``.

    Computed as ONE convolution with ``n * C_out`` output channels (the candidates stacked along the
    output axis) followed by the V-weighted sum over the candidate axis. By linearity this equals
    convolving each pixel with its own mixed kernel ``sum_i V_i k_i`` (paper Eq. 4), and it equals
    the official code's n separate convs (``SpatialCondConv2d``) with fewer kernel launches.

    The kernels are stored as one parameter ``candidate_weight`` of shape
    ``(n, C_out, C_in, k, k)``; it is not an ``nn.Conv2d`` weight, so generic initialisers leave its
    per-candidate xavier init alone. Spectral norm (code: one ``spectral_norm`` per candidate) is
    applied per candidate by :class:`GroupedSpectralNorm`, never jointly over the stack.

    Args:
        in_channels: Input channels C_in.
        out_channels: Output channels C_out.
        num_candidates: Number n of candidate kernels (= channels of V).
        kernel_size: Square kernel size (code: 3).
        stride: Convolution stride.
        padding: Zero padding; None means ``kernel_size // 2`` (same size at stride 1).
        bias: One bias vector per candidate, mixed by V like the kernels (code: False).
        use_spectral_norm: Spectral norm on each candidate (code: ``'spectral' in norm_G``).

    Shapes:
        ``forward(x (B, C_in, H, W), vectors (B, n, H', W')) -> (B, C_out, H', W')`` where
        ``H', W'`` is the conv's output size (``H, W`` at stride 1).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_candidates: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        bias: bool = False,
        use_spectral_norm: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_candidates = num_candidates
        self.stride = stride
        self.padding = kernel_size // 2 if padding is None else padding
        weight = torch.empty(num_candidates, out_channels, in_channels, kernel_size, kernel_size)
        init_candidates(weight)
        self.candidate_weight = nn.Parameter(weight)
        self.candidate_bias = (
            nn.Parameter(torch.zeros(num_candidates, out_channels)) if bias else None
        )
        if use_spectral_norm:
            grouped_spectral_norm(self, "candidate_weight")

    def candidate_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """All candidates' responses from one conv, shape ``(B, n, C_out, H', W')``."""
        return self._responses(x, self.candidate_weight, self.candidate_bias)

    def _responses(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        flat_weight = weight.reshape(-1, *weight.shape[2:])
        flat_bias = None if bias is None else bias.reshape(-1)
        y = F.conv2d(x, flat_weight, flat_bias, stride=self.stride, padding=self.padding)
        return y.view(y.shape[0], self.num_candidates, self.out_channels, *y.shape[2:])

    def forward(self, x: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        """Mix the candidates' responses per pixel with the semantic vectors ``vectors``."""
        normed = parametrize.is_parametrized(self, "candidate_weight")
        plist = self.parametrizations["candidate_weight"] if normed else None
        if (
            plist is not None
            and len(plist) == 1
            and self.candidate_bias is None
            and divides_output(self, "candidate_weight", output_is_smaller=True)
        ):
            # sum_i V_i conv(x, k_i / sigma_i) = sum_i (V_i / sigma_i) conv(x, k_i): the n
            # sigmas divide the (B, n, H', W') vectors instead of the candidate kernels.
            weight, sigma = weight_and_sigma_of(self, "candidate_weight")
            y = self._responses(x, weight, None)
        else:
            sigma, y = None, self.candidate_outputs(x)
        if vectors.shape[1] != self.num_candidates or vectors.shape[2:] != y.shape[3:]:
            raise ValueError(
                f"semantic vectors of shape {tuple(vectors.shape)} do not match "
                f"{self.num_candidates} candidates at {tuple(y.shape[3:])}"
            )
        mix = vectors if sigma is None else vectors / sigma.view(1, -1, 1, 1)
        # The weighted sum over the n candidates as n fused multiply-adds over (B, C_out, H', W'):
        # an einsum here ran as B*H'*W' tiny (C_out x n) @ (n x 1) matmuls on a permuted copy of
        # y (SC-GAN's largest `copy_` and `bmm` shares on CPU).
        out = y[:, 0] * mix[:, 0:1]
        for i in range(1, self.num_candidates):
            out = torch.addcmul(out, y[:, i], mix[:, i : i + 1])
        return out

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, num_candidates={self.num_candidates}, "
            f"stride={self.stride}, padding={self.padding}"
        )
