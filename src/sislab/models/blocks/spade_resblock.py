"""SPADE's residual block, with the conditional norm injectable so CLADE/VASIS can reuse it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from sislab.models.convs.spectral_norm import spectral_norm
from sislab.models.norms.spade import SPADE, ParamFreeNorm

NormFactory = Callable[[int], nn.Module]
"""``norm_factory(channels) -> module`` whose ``forward(x, segmap, negative_slope=None)``
normalises ``channels`` and, given a slope, applies the leaky ReLU after its modulation."""

ConvPadding = Literal["zeros", "reflect", "reflect_after"]
"""Padding of the 3x3 residual convs: zeros (SPADE), reflect (VASIS ``--pad reflect``: reflection
pad then conv) or reflect_after (VA-OASIS code: unpadded conv, then a reflection pad)."""


def spade_norm_factory(
    label_channels: int,
    hidden: int = 128,
    kernel_size: int = 3,
    param_free: ParamFreeNorm = "batch",
) -> NormFactory:
    """A factory of SPADE layers that all read the same semantic map.

    Args:
        label_channels: Channels of the semantic map.
        hidden: Width of each SPADE MLP.
        kernel_size: Kernel of the SPADE MLP convs.
        param_free: Parameter-free norm, ``batch`` or ``instance``.

    Returns:
        ``channels -> SPADE(channels, label_channels, hidden, kernel_size, param_free)``.
    """

    def make(channels: int) -> nn.Module:
        return SPADE(channels, label_channels, hidden, kernel_size, param_free)

    return make


def _maybe_sn(conv: nn.Conv2d, use_spectral_norm: bool) -> nn.Module:
    return spectral_norm(conv) if use_spectral_norm else conv


def _conv3x3(fin: int, fout: int, padding: ConvPadding, use_spectral_norm: bool) -> nn.Module:
    if padding == "reflect_after":
        # VA-OASIS generator.py: conv(padding=0) then ReflectionPad2d(1) restores the size.
        conv = _maybe_sn(nn.Conv2d(fin, fout, 3, padding=0), use_spectral_norm)
        return nn.Sequential(conv, nn.ReflectionPad2d(1))
    conv = nn.Conv2d(fin, fout, 3, padding=1, padding_mode=padding)
    return _maybe_sn(conv, use_spectral_norm)


class SpadeResBlock(nn.Module):
    """Pre-activation residual block: (norm -> LReLU -> conv3x3) twice, plus a shortcut.

    Follows SPADE's ``SPADEResnetBlock``: ``fmiddle = min(fin, fout)``; the shortcut is learned
    (norm -> conv1x1 without bias, no activation) iff ``fin != fout``, identity otherwise; spectral
    norm wraps conv_0, conv_1 and conv_s but never the norm layers' own convs.

    Args:
        fin: Input channels.
        fout: Output channels.
        label_channels: Channels of the semantic map; used only when ``norm_factory`` is None.
        use_spectral_norm: Spectral norm on the block's convs (SPADE's ``spectral`` in norm_G).
        norm_factory: ``channels -> module(x, segmap)``; None builds SPADE layers with the
            arguments below. CLADE/VASIS pass their own.
        spade_hidden: Hidden width of the default SPADE layers.
        spade_kernel: Kernel size of the default SPADE layers' convs.
        param_free: Parameter-free norm of the default SPADE layers.
        norm_extra_channels: Channels a norm layer adds to its output (CLADE with instances: 1,
            the instance-edge feature); the convs that read a norm output take them as input.
        conv_padding: Padding of conv_0 and conv_1 (``ConvPadding``).

    Shapes:
        ``forward(x (B, fin, H, W), segmap (B, label_channels, H0, W0)) -> (B, fout, H, W)``.
    """

    def __init__(
        self,
        fin: int,
        fout: int,
        label_channels: int,
        use_spectral_norm: bool = True,
        norm_factory: NormFactory | None = None,
        spade_hidden: int = 128,
        spade_kernel: int = 3,
        param_free: ParamFreeNorm = "batch",
        norm_extra_channels: int = 0,
        conv_padding: ConvPadding = "zeros",
    ) -> None:
        super().__init__()
        if norm_factory is None:
            norm_factory = spade_norm_factory(
                label_channels, spade_hidden, spade_kernel, param_free
            )
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        # CLADE architecture.py: add_channels = 1 with instances (the norm appends an edge feature).
        extra = norm_extra_channels
        self.conv_0 = _conv3x3(fin + extra, fmiddle, conv_padding, use_spectral_norm)
        self.conv_1 = _conv3x3(fmiddle + extra, fout, conv_padding, use_spectral_norm)
        self.norm_0 = norm_factory(fin)
        self.norm_1 = norm_factory(fmiddle)
        if self.learned_shortcut:
            conv_s = nn.Conv2d(fin + extra, fout, 1, bias=False)
            self.conv_s = _maybe_sn(conv_s, use_spectral_norm)
            self.norm_s = norm_factory(fin)

    def shortcut(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        """Identity, or norm -> conv1x1 when the channel count changes."""
        if self.learned_shortcut:
            return self.conv_s(self.norm_s(x, segmap))
        return x

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        """Apply the block; ``segmap`` is resized inside each norm layer."""
        x_s = self.shortcut(x, segmap)
        # The norms apply the block's leaky ReLU themselves (fused with their modulation).
        dx = self.conv_0(self.norm_0(x, segmap, negative_slope=0.2))
        dx = self.conv_1(self.norm_1(dx, segmap, negative_slope=0.2))
        return x_s + dx
