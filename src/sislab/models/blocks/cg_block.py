"""CG-Block: GroupDNet's residual block, SPADE's block with every conv grouped (SMIS code
``SPADEV2ResnetBlock`` in models/networks/architecture.py)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from sislab.models.convs.spectral_norm import spectral_norm

CgNormFactory = Callable[[int], nn.Module]
"""``norm_factory(channels) -> module(x, segmap)``, built for the block's group number."""


def _maybe_sn(conv: nn.Conv2d, use_spectral_norm: bool) -> nn.Module:
    # SMIS code: torch's spectral_norm on the whole grouped weight (one sigma per conv).
    return spectral_norm(conv) if use_spectral_norm else conv


class CGBlock(nn.Module):
    """(CG-Norm -> LReLU(0.2) -> group conv3x3) twice, plus a shortcut.

    ``fmiddle = min(fin, fout)``; the shortcut is CG-Norm -> group conv1x1 without bias when
    ``fin != fout``, identity otherwise. LReLU as in the SMIS code (the supplementary figure
    draws a ReLU). Spectral norm on conv_0, conv_1, conv_s, never on the norms' MLPs.

    Args:
        fin: Input channels.
        fout: Output channels.
        groups: The block's group number G (divides fin, fout and min(fin, fout)).
        norm_factory: ``channels -> CG-Norm`` for this block's G.
        use_spectral_norm: Spectral norm on the block's convs.

    Shapes:
        ``forward(x (B, fin, H, W), segmap (B, L, H0, W0)) -> (B, fout, H, W)``.
    """

    def __init__(
        self,
        fin: int,
        fout: int,
        groups: int,
        norm_factory: CgNormFactory,
        use_spectral_norm: bool = True,
    ) -> None:
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        self.conv_0 = _maybe_sn(
            nn.Conv2d(fin, fmiddle, 3, padding=1, groups=groups), use_spectral_norm
        )
        self.conv_1 = _maybe_sn(
            nn.Conv2d(fmiddle, fout, 3, padding=1, groups=groups), use_spectral_norm
        )
        self.norm_0 = norm_factory(fin)
        self.norm_1 = norm_factory(fmiddle)
        if self.learned_shortcut:
            conv_s = nn.Conv2d(fin, fout, 1, bias=False, groups=groups)
            self.conv_s = _maybe_sn(conv_s, use_spectral_norm)
            self.norm_s = norm_factory(fin)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        """Apply the block; ``segmap`` is resized inside each CG-Norm."""
        x_s = self.conv_s(self.norm_s(x, segmap)) if self.learned_shortcut else x
        # The norms apply the block's leaky ReLU themselves (fused with their modulation).
        dx = self.conv_0(self.norm_0(x, segmap, negative_slope=0.2))
        dx = self.conv_1(self.norm_1(dx, segmap, negative_slope=0.2))
        return x_s + dx
