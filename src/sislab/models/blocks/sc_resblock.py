"""SC-GAN's residual block (SCB, paper Fig. 4): SCN/SCC pairs, with Table 3's baseline operators."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from sislab.models.convs.scc import SemanticConditionalConv2d
from sislab.models.convs.spectral_norm import spectral_norm
from sislab.models.convs.vector_concat import VectorConcatConv2d
from sislab.models.norms.modulation import activate
from sislab.models.norms.scn import SemanticConditionalNorm
from sislab.models.norms.spade import SPADE, ParamFreeNorm

SrgOps = Literal["conv_bn", "conv_scn", "scc_bn", "scc_scn"]
"""Operators of the SRG blocks (paper Table 3): conv part ``conv|scc``, norm part ``bn|scn``."""

# SPADE code: nhidden = 128, 3x3 MLP convs ('spadesyncbatch3x3'), used by the shortcut's SPADE.
SPADE_HIDDEN = 128
SPADE_KERNEL = 3


def _conv(fin: int, fout: int, ops: SrgOps, num_candidates: int, use_sn: bool) -> nn.Module:
    if ops.startswith("scc"):
        return SemanticConditionalConv2d(fin, fout, num_candidates, use_spectral_norm=use_sn)
    # Table 3 "Conv": n plain kernels per layer over concat(F, V_conv).
    return VectorConcatConv2d(fin, fout, num_candidates, num_candidates, use_spectral_norm=use_sn)


class _StaticNorm(nn.Module):
    """The code's non-conditional norm for ``*_bn``; ignores the semantic vectors."""

    def __init__(self, channels: int, param_free: ParamFreeNorm) -> None:
        super().__init__()
        # SC-GAN code SCResnetBlock: 'batch' -> BatchNorm2d(affine=True),
        # 'instance' -> InstanceNorm2d(affine=False).
        if param_free == "batch":
            self.norm = nn.BatchNorm2d(channels, affine=True)
        else:
            self.norm = nn.InstanceNorm2d(channels, affine=False)

    def forward(
        self, x: torch.Tensor, vectors: torch.Tensor, negative_slope: float | None = None
    ) -> torch.Tensor:
        return activate(self.norm(x), negative_slope)


def _norm(channels: int, ops: SrgOps, num_candidates: int, param_free: ParamFreeNorm):
    if ops.endswith("scn"):
        return SemanticConditionalNorm(channels, num_candidates, param_free)
    return _StaticNorm(channels, param_free)


class ScResBlock(nn.Module):
    """Pre-activation block: (norm -> LReLU(0.2) -> conv3x3) twice, plus a shortcut.

    Follows ``SCResnetBlock`` of the SC-GAN code: ``fmiddle = min(fin, fout)``; both convs are
    driven by the stage's conv vectors, both norms by its norm vectors. The learned shortcut
    (``fin != fout``) is NOT an SC operator: SPADE(fin, semantic map; param-free batch norm,
    hidden 128, 3x3) followed by a spectral-normalised conv3x3 with bias (the code wraps it in
    ``spectral_norm`` unconditionally; here it follows ``use_spectral_norm``, default True).

    Args:
        fin: Input channels.
        fout: Output channels.
        semantic_nc: Channels of the semantic map (read only by the shortcut's SPADE).
        ops: ``scc_scn`` (SC-GAN), ``scc_bn``, ``conv_scn``, ``conv_bn`` (Table 3).
        num_conv_candidates: n of the SCCs (also the kernel copies and V channels of ``conv_*``).
        num_norm_candidates: n of the SCNs.
        use_spectral_norm: Spectral norm on the block's convs (code: ``spectral`` in norm_G).
        param_free: Parameter-free norm of SCN and of the shortcut's SPADE.

    Shapes:
        ``forward(x (B, fin, H, W), conv_vectors (B, n_conv, H, W), norm_vectors
        (B, n_norm, H, W), semantics (B, semantic_nc, H0, W0)) -> (B, fout, H, W)``.
    """

    def __init__(
        self,
        fin: int,
        fout: int,
        semantic_nc: int,
        ops: SrgOps,
        num_conv_candidates: int,
        num_norm_candidates: int,
        use_spectral_norm: bool = True,
        param_free: ParamFreeNorm = "batch",
    ) -> None:
        super().__init__()
        fmiddle = min(fin, fout)
        self.learned_shortcut = fin != fout
        self.conv_0 = _conv(fin, fmiddle, ops, num_conv_candidates, use_spectral_norm)
        self.conv_1 = _conv(fmiddle, fout, ops, num_conv_candidates, use_spectral_norm)
        self.norm_0 = _norm(fin, ops, num_norm_candidates, param_free)
        self.norm_1 = _norm(fmiddle, ops, num_norm_candidates, param_free)
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, semantic_nc, SPADE_HIDDEN, SPADE_KERNEL, param_free)
            conv_s = nn.Conv2d(fin, fout, 3, padding=1)
            self.conv_s = spectral_norm(conv_s) if use_spectral_norm else conv_s

    def forward(
        self,
        x: torch.Tensor,
        conv_vectors: torch.Tensor,
        norm_vectors: torch.Tensor,
        semantics: torch.Tensor,
    ) -> torch.Tensor:
        """Apply the block at the resolution of ``x`` (the vectors must match it)."""
        # The norms apply the block's leaky ReLU themselves (fused with their modulation).
        dx = self.conv_0(self.norm_0(x, norm_vectors, negative_slope=0.2), conv_vectors)
        dx = self.conv_1(self.norm_1(dx, norm_vectors, negative_slope=0.2), conv_vectors)
        x_s = self.conv_s(self.norm_s(x, semantics)) if self.learned_shortcut else x
        return x_s + dx
