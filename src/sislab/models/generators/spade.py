"""SPADE's generator: a stack of SPADE residual blocks upsampling from a small latent grid."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from sislab.errors import SpecError
from sislab.models.blocks.spade_resblock import (
    ConvPadding,
    NormFactory,
    SpadeResBlock,
    spade_norm_factory,
)
from sislab.models.geometry import UpsamplingMode
from sislab.models.norms.spade import ParamFreeNorm

# SPADE code compute_latent_vector_size: normal 5, more 6, most 7 upsamplings.
NUM_UPSAMPLINGS: dict[str, int] = {"normal": 5, "more": 6, "most": 7}

ResolutionNormFactory = Callable[[int, int], NormFactory]
"""``(height, width) of a block's features -> the norm factory of that block`` (VASIS sizes its
position code per resolution: generator.py sets opt.height/width before each block)."""


def block_scales(upsampling: UpsamplingMode) -> dict[str, int]:
    """Upsampling factor of each block's features relative to the latent grid.

    Args:
        upsampling: ``normal``, ``more`` or ``most``.

    Returns:
        ``{"head_0": 1, "G_middle_0": 2, "G_middle_1": 2 or 4, "up_0": ..., ...}``.
    """
    middle_1 = 4 if upsampling in ("more", "most") else 2
    scales = {"head_0": 1, "G_middle_0": 2, "G_middle_1": middle_1}
    for i in range(4 + int(upsampling == "most")):
        scales[f"up_{i}"] = middle_1 * 2 ** (i + 1)
    return scales


def latent_size(height: int, width: int, upsampling: UpsamplingMode) -> tuple[int, int]:
    """Height and width of the generator's first feature map (SPADE's ``sh, sw``).

    Args:
        height: Output height.
        width: Output width.
        upsampling: ``normal``, ``more`` or ``most``.

    Returns:
        ``(sh, sw)`` with ``sw = width // 2**U`` and ``sh = round(sw * height / width)``.

    Raises:
        SpecError: The output size is not ``(sh, sw) * 2**U`` for this upsampling mode.
    """
    factor = 2 ** NUM_UPSAMPLINGS[upsampling]
    # SPADE code: sw = crop_size // 2**U; sh = round(sw / aspect_ratio)
    sw = width // factor
    sh = round(sw * height / width)
    if sw < 1 or sh < 1 or (sh * factor, sw * factor) != (height, width):
        raise SpecError(
            f"image size {height}x{width} does not fit upsampling mode {upsampling!r} "
            f"(the generator upsamples {factor}x from a {sh}x{sw} grid)",
            fix=f"use a height and width that are multiples of {factor} "
            "or another num_upsampling_layers",
        )
    return sh, sw


class SpadeGenerator(nn.Module):
    """SPADE generator (``SPADEGenerator``): fc -> head_0 -> G_middle_0/1 -> up_0..up_3 -> conv_img.

    Args:
        semantic_nc: Channels of the semantic map (one-hot classes plus instance edges).
        height: Output height.
        width: Output width.
        ngf: Base width; blocks have 16, 16, 16, 8, 4, 2, 1 (and 1/2 for ``most``) times ngf.
        upsampling: ``normal`` (5 upsamplings), ``more`` (6: one between G_middle_0 and
            G_middle_1), ``most`` (7: plus up_4).
        use_vae: Start from ``Linear(z_dim -> 16 ngf sh sw)`` of a latent z instead of a conv on
            the downsampled segmap.
        z_dim: Size of z when ``use_vae``.
        use_spectral_norm: Spectral norm on the residual blocks' convs (not on fc, the SPADE
            MLPs or conv_img, as in SPADE's code).
        norm_factory: ``channels -> module(x, segmap)`` for every block; None: SPADE layers from
            the three arguments below. CLADE/VASIS pass their own.
        spade_hidden: Hidden width of the SPADE MLPs.
        spade_kernel: Kernel size of the SPADE MLP convs.
        param_free: Parameter-free norm inside SPADE.
        norm_factory_at: ``(height, width) -> norm factory`` per block; overrides
            ``norm_factory`` (VASIS position codes are sized per block resolution).
        norm_extra_channels: Channels each norm adds to its output (CLADE's instance feature).
        conv_padding: Padding of the residual convs; anything but ``zeros`` also makes fc and
            conv_img reflection-padded (VASIS ``--pad reflect``).
        norm_input: Module mapping the semantic input to what every norm layer reads (e.g.
            ``IntraClassOffsets`` appending CLADE-ICPE's offsets); None: the semantic input.

    Shapes:
        ``forward(semantics (B, semantic_nc, H, W), z (B, z_dim) | None) -> (B, 3, H, W)`` in
        [-1, 1].
    """

    def __init__(
        self,
        semantic_nc: int,
        height: int,
        width: int,
        ngf: int = 64,
        upsampling: UpsamplingMode = "normal",
        use_vae: bool = False,
        z_dim: int = 256,
        use_spectral_norm: bool = True,
        norm_factory: NormFactory | None = None,
        spade_hidden: int = 128,
        spade_kernel: int = 3,
        param_free: ParamFreeNorm = "batch",
        norm_factory_at: ResolutionNormFactory | None = None,
        norm_extra_channels: int = 0,
        conv_padding: ConvPadding = "zeros",
        norm_input: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.ngf = ngf
        self.upsampling = upsampling
        self.use_vae = use_vae
        self.z_dim = z_dim
        self.sh, self.sw = latent_size(height, width, upsampling)
        if norm_factory is None:
            norm_factory = spade_norm_factory(semantic_nc, spade_hidden, spade_kernel, param_free)
        self.semantic_nc = semantic_nc
        self.norm_input = norm_input if norm_input is not None else nn.Identity()
        nf = ngf
        pad_mode = "zeros" if conv_padding == "zeros" else "reflect"
        if use_vae:
            self.fc = nn.Linear(z_dim, 16 * nf * self.sh * self.sw)
        else:
            # SPADE code: deterministic G starts from the nearest-downsampled segmap.
            self.fc = nn.Conv2d(semantic_nc, 16 * nf, 3, padding=1, padding_mode=pad_mode)
        scales = block_scales(upsampling)

        def block(name: str, fin: int, fout: int) -> SpadeResBlock:
            factory = norm_factory
            if norm_factory_at is not None:
                factory = norm_factory_at(self.sh * scales[name], self.sw * scales[name])
            return SpadeResBlock(
                fin,
                fout,
                semantic_nc,
                use_spectral_norm=use_spectral_norm,
                norm_factory=factory,
                norm_extra_channels=norm_extra_channels,
                conv_padding=conv_padding,
            )

        self.head_0 = block("head_0", 16 * nf, 16 * nf)
        self.G_middle_0 = block("G_middle_0", 16 * nf, 16 * nf)
        self.G_middle_1 = block("G_middle_1", 16 * nf, 16 * nf)
        self.up_0 = block("up_0", 16 * nf, 8 * nf)
        self.up_1 = block("up_1", 8 * nf, 4 * nf)
        self.up_2 = block("up_2", 4 * nf, 2 * nf)
        self.up_3 = block("up_3", 2 * nf, 1 * nf)
        final_nc = nf
        if upsampling == "most":
            self.up_4 = block("up_4", 1 * nf, nf // 2)
            final_nc = nf // 2
        self.conv_img = nn.Conv2d(final_nc, 3, 3, padding=1, padding_mode=pad_mode)
        # SPADE code: self.up = nn.Upsample(scale_factor=2) (nearest); a module, so that
        # module-hook FLOP counters see it as the papers' counters did.
        self.up = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, semantics: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Synthesise an image from the semantic map (and z when the generator uses a VAE).

        Args:
            semantics: (B, semantic_nc, H, W) one-hot map plus instance edges.
            z: (B, z_dim) latent; only with ``use_vae``; None samples ``N(0, I)`` as SPADE does.

        Returns:
            (B, 3, H, W) image in [-1, 1].
        """
        seg = semantics
        if self.use_vae:
            if z is None:
                z = torch.randn(seg.shape[0], self.z_dim, device=seg.device, dtype=seg.dtype)
            x = self.fc(z).view(-1, 16 * self.ngf, self.sh, self.sw)
        else:
            if z is not None:
                raise ValueError("z given to a SPADE generator built without use_vae")
            x = self.fc(F.interpolate(seg, size=(self.sh, self.sw), mode="nearest"))
        seg = self.norm_input(seg)
        x = self.head_0(x, seg)
        x = self.G_middle_0(self.up(x), seg)
        if self.upsampling in ("more", "most"):
            x = self.up(x)
        x = self.G_middle_1(x, seg)
        x = self.up_0(self.up(x), seg)
        x = self.up_1(self.up(x), seg)
        x = self.up_2(self.up(x), seg)
        x = self.up_3(self.up(x), seg)
        if self.upsampling == "most":
            x = self.up_4(self.up(x), seg)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2, inplace=True)))
