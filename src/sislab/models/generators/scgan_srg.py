"""SC-GAN's semantic render generator (SRG, G_R): SPADE's layout with SC residual blocks."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from sislab.models.blocks.sc_resblock import ScResBlock, SrgOps
from sislab.models.generators.spade import latent_size
from sislab.models.norms.spade import ParamFreeNorm

# SC-GAN code SCGGenerator: head_0, G_middle_0, G_middle_1, up_0..up_3 widths in units of ngf.
BLOCK_WIDTHS = (16, 16, 16, 8, 4, 2, 1)


class SemanticRenderGenerator(nn.Module):
    """SRG (code ``SCGGenerator`` minus its SVG): fc -> 7 SC blocks -> LReLU -> conv3x3 -> hardtanh.

    Input (code, not the paper's "noise z" for scenes): without VAE the semantic map resized
    (nearest) to the latent grid through ``conv3x3(L -> 16 nff)``; with VAE
    ``Linear(z_dim -> 16 nff sh sw)`` of z. Blocks: head_0 (16 nff -> 16 ngf) at the latent grid,
    up x2, G_middle_0 (16 ngf), [up x2 for ``more``], G_middle_1, then up x2 before each of
    up_0..up_3 (8, 4, 2, 1 x ngf). Block k reads the SVG stage of its resolution: head_0 stage 0,
    G_middle_0 stage 1, G_middle_1 stage 1 (``normal``) or 2 (``more``), up_0..up_3 the next ones.
    ``most`` (7 upsamplings) is not supported: the official code crashes for it.

    Args:
        semantic_nc: Channels L of the semantic map.
        height: Output height.
        width: Output width.
        ngf: Block width unit.
        nff: Width unit of the input fc (code ``nff``).
        upsampling: ``normal`` (5 upsamplings) or ``more`` (6).
        ops: Table 3 operator set.
        num_conv_candidates: n of the SCCs.
        num_norm_candidates: n of the SCNs.
        use_spectral_norm: Spectral norm on the blocks' convs (not on fc or conv_img).
        param_free: Parameter-free norm in SCN and the shortcut SPADEs.
        use_vae: Start from z instead of the semantic map.
        z_dim: Size of z.

    Shapes:
        ``forward(semantics (B, L, H, W), conv_vectors, norm_vectors, z (B, z_dim) | None)`` ->
        image ``(B, 3, H, W)`` in [-1, 1]; the vector lists are :class:`SvgOutput`'s.
    """

    def __init__(
        self,
        semantic_nc: int,
        height: int,
        width: int,
        ngf: int,
        nff: int,
        upsampling: str,
        ops: SrgOps = "scc_scn",
        num_conv_candidates: int = 3,
        num_norm_candidates: int = 3,
        use_spectral_norm: bool = True,
        param_free: ParamFreeNorm = "batch",
        use_vae: bool = False,
        z_dim: int = 256,
    ) -> None:
        super().__init__()
        if upsampling not in ("normal", "more"):
            raise ValueError(f"SC-GAN supports upsampling 'normal' or 'more', got {upsampling!r}")
        self.extra_middle_up = upsampling == "more"
        self.sh, self.sw = latent_size(height, width, upsampling)
        self.nff = nff
        self.use_vae = use_vae
        self.z_dim = z_dim
        if use_vae:
            self.fc = nn.Linear(z_dim, 16 * nff * self.sh * self.sw)
        else:
            self.fc = nn.Conv2d(semantic_nc, 16 * nff, 3, padding=1)
        widths = [16 * nff] + [w * ngf for w in BLOCK_WIDTHS]
        self.blocks = nn.ModuleList(
            ScResBlock(
                fin,
                fout,
                semantic_nc,
                ops,
                num_conv_candidates,
                num_norm_candidates,
                use_spectral_norm,
                param_free,
            )
            for fin, fout in itertools.pairwise(widths)
        )
        self.conv_img = nn.Conv2d(ngf, 3, 3, padding=1)

    @property
    def num_stages(self) -> int:
        """SVG stages this SRG reads (6 for ``normal``, 7 for ``more``)."""
        return 6 + int(self.extra_middle_up)

    def stage_of_block(self) -> list[int]:
        """Index of the SVG stage that drives each block."""
        m = int(self.extra_middle_up)
        return [0, 1, 1 + m, 2 + m, 3 + m, 4 + m, 5 + m]

    def forward(
        self,
        semantics: torch.Tensor,
        conv_vectors: list[torch.Tensor],
        norm_vectors: list[torch.Tensor],
        z: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Render the image from the semantic vectors (and z with VAE)."""
        if self.use_vae:
            if z is None:
                z = torch.randn(
                    semantics.shape[0], self.z_dim, device=semantics.device, dtype=semantics.dtype
                )
            x = self.fc(z).view(-1, 16 * self.nff, self.sh, self.sw)
        else:
            x = self.fc(F.interpolate(semantics, size=(self.sh, self.sw), mode="nearest"))
        previous_stage = 0
        for block, stage in zip(self.blocks, self.stage_of_block(), strict=True):
            if stage != previous_stage:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            previous_stage = stage
            x = block(x, conv_vectors[stage], norm_vectors[stage], semantics)
        return F.hardtanh(self.conv_img(F.leaky_relu(x, 0.2, inplace=True)))
