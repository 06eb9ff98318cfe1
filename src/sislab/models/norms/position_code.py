"""VASIS's position code: learnable, absolute (fixed) or relative maps modulating gamma and beta.

Follows xml94/VASIS ``VASIS/models/networks/normalization.py`` (``VariationAwareSPADE``): the
chosen maps are concatenated (absolute, learnable, relative, in that order), two 1x1 convs map them
to the modulated channels, and ``gamma <- gamma * (1 + conv_g(P_g))``, ``beta <- beta * (1 +
conv_b(P_b))``. The learnable maps are per layer and sized to the layer's resolution.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from sislab.models.layout import channels_last_view, from_channels_last_view

PositionCodeKind = Literal[
    "none",
    "learn",
    "fix",
    "relative",
    "fix_learn",
    "fix_relative",
    "learn_relative",
    "fix_learn_relative",
]
"""VASIS ``--pos``: none (``no``), learn (paper default), fix (absolute), relative (CLADE-ICPE
offsets) and their concatenations."""


def absolute_position(height: int, width: int) -> torch.Tensor:
    """VASIS's fixed code: (2, H, W) with ``row / H * 2 - 1`` and ``col / W * 2 - 1`` in [-1, 1)."""
    rows = torch.arange(height, dtype=torch.float32) / height * 2 - 1
    cols = torch.arange(width, dtype=torch.float32) / width * 2 - 1
    return torch.stack(
        [rows.view(-1, 1).expand(height, width), cols.view(1, -1).expand(height, width)]
    )


class PositionCode(nn.Module):
    """Multiplicative position modulation of one norm layer's gamma and beta.

    Args:
        kind: Which maps to use (``PositionCodeKind``); ``none`` is the identity.
        out_channels: Channels of gamma/beta to modulate (``pos_nc='one'``: pass 1, broadcast).
        height: The layer's feature height (learnable and absolute maps are this size).
        width: The layer's feature width.

    Shapes:
        ``forward(gamma, beta (B, C, H, W), offsets (B, 2, H, W) | None) -> (gamma, beta)``.
    """

    def __init__(self, kind: PositionCodeKind, out_channels: int, height: int, width: int) -> None:
        super().__init__()
        self.kind = kind
        self.use_fix = "fix" in kind
        self.use_learn = "learn" in kind
        self.use_relative = "relative" in kind
        in_channels = 2 * (int(self.use_fix) + int(self.use_learn) + int(self.use_relative))
        self.in_channels = in_channels
        if self.use_fix:
            self.register_buffer("fixed", absolute_position(height, width), persistent=False)
        if self.use_learn:
            # VASIS: gamma_pos_learn, beta_pos_learn ~ N(0, 1), one (2, H, W) map each.
            self.gamma_pos_learn = nn.Parameter(torch.randn(2, height, width))
            self.beta_pos_learn = nn.Parameter(torch.randn(2, height, width))
        if in_channels:
            self.conv_pos_gamma = nn.Conv2d(in_channels, out_channels, 1)
            self.conv_pos_beta = nn.Conv2d(in_channels, out_channels, 1)
            for conv in (self.conv_pos_gamma, self.conv_pos_beta):
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)

    def _maps(self, learned: torch.Tensor | None, offsets: torch.Tensor | None, batch: int):
        parts: list[torch.Tensor] = []
        if self.use_fix:
            parts.append(self.fixed.unsqueeze(0).expand(batch, -1, -1, -1))
        if learned is not None:
            parts.append(learned.unsqueeze(0).expand(batch, -1, -1, -1))
        if self.use_relative:
            if offsets is None:
                raise ValueError(f"position code {self.kind!r} needs the intra-class offsets")
            parts.append(offsets)
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def forward(
        self, gamma: torch.Tensor, beta: torch.Tensor, offsets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Modulate gamma and beta; identity for ``none``."""
        if not self.in_channels:
            return gamma, beta
        batch = gamma.shape[0] if self.use_relative else 1
        p_gamma = self._maps(self.gamma_pos_learn if self.use_learn else None, offsets, batch)
        p_beta = self._maps(self.beta_pos_learn if self.use_learn else None, offsets, batch)
        gamma = gamma * (1 + pointwise(self.conv_pos_gamma, p_gamma.to(gamma.dtype)))
        beta = beta * (1 + pointwise(self.conv_pos_beta, p_beta.to(beta.dtype)))
        return gamma, beta


def pointwise(conv: nn.Conv2d, maps: torch.Tensor) -> torch.Tensor:
    """``conv(maps)`` for a 1x1 convolution, as a matrix product over the channels.

    The position maps have 2-6 channels, the outputs up to a layer's width at its full
    resolution. In VA-SPADE's channels-last step the convolution's backward took torch's
    unvectorised path (``_slow_conv2d_backward``) with a copy of the gradient to contiguous,
    ~10 ms per call at (1, 64, 128, 256); the product has no layout to mismatch. The result is
    channels-last, as the activations it modulates by default.
    """
    weight = conv.weight.flatten(1)  # (out, in): a 1x1 kernel's matrix
    return from_channels_last_view(F.linear(channels_last_view(maps), weight, conv.bias))
