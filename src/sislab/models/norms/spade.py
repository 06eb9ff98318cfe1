"""SPADE: spatially-adaptive (de)normalisation (Park et al., CVPR 2019, Sec. 3)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from sislab.models.norms.modulation import modulate

ParamFreeNorm = Literal["batch", "instance"]


def param_free_norm(kind: ParamFreeNorm, channels: int) -> nn.Module:
    """The parameter-free normalisation that SPADE-style layers modulate.

    Args:
        kind: ``batch`` (plain BatchNorm2d; the trainer converts it to SyncBatchNorm as SPADE's
            ``spadesyncbatch3x3``) or ``instance``.
        channels: Channels of the normalised activation.

    Returns:
        A norm layer without learnable affine parameters.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=False)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    raise ValueError(f"unknown param-free norm {kind!r}; expected 'batch' or 'instance'")


class SPADE(nn.Module):
    """Normalise ``x`` without parameters, then modulate it per pixel from the semantic map.

    ``out = norm(x) * (1 + gamma(m)) + beta(m)`` with ``gamma, beta`` predicted by a two-layer conv
    net from the segmap ``m`` resized (nearest) to the resolution of ``x``.

    Args:
        norm_channels: Channels C of the activation (and of gamma, beta).
        label_channels: Channels of the semantic map (one-hot classes plus instance edges).
        hidden: Width of the shared conv (SPADE code: ``nhidden = 128``, hard-coded).
        kernel_size: Kernel of the three convs (SPADE's ``3x3`` in ``spadesyncbatch3x3``).
        param_free: Parameter-free norm, ``batch`` or ``instance``.

    Shapes:
        ``forward(x (B, C, H, W), segmap (B, label_channels, H0, W0)) -> (B, C, H, W)``.
    """

    def __init__(
        self,
        norm_channels: int,
        label_channels: int,
        hidden: int = 128,
        kernel_size: int = 3,
        param_free: ParamFreeNorm = "batch",
    ) -> None:
        super().__init__()
        self.param_free_norm = param_free_norm(param_free, norm_channels)
        padding = kernel_size // 2  # SPADE code: pw = ks // 2, zero padding
        self.mlp_shared = nn.Sequential(
            nn.Conv2d(label_channels, hidden, kernel_size, padding=padding), nn.ReLU()
        )
        # No spectral norm inside SPADE's MLP (SPADE code normalization.py).
        self.mlp_gamma = nn.Conv2d(hidden, norm_channels, kernel_size, padding=padding)
        self.mlp_beta = nn.Conv2d(hidden, norm_channels, kernel_size, padding=padding)

    def forward(
        self, x: torch.Tensor, segmap: torch.Tensor, negative_slope: float | None = None
    ) -> torch.Tensor:
        """Normalise ``x`` and modulate it with gamma, beta predicted from ``segmap``.

        ``negative_slope``: the leaky ReLU the block applies next, fused with the modulation
        (``modulation.modulate``); None returns the pre-activation.
        """
        segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        actv = self.mlp_shared(segmap)
        gamma = self.mlp_gamma(actv)
        beta = self.mlp_beta(actv)
        # SPADE eq. / code: "1 +" so that gamma = 0 is the identity modulation.
        return modulate(self.param_free_norm, x, gamma, beta, negative_slope)
