"""OASIS's generator: SPADE residual blocks fed with the label map and a 3D noise tensor.

Follows boschresearch/OASIS ``models/generator.py`` (``OASIS_Generator``): six SPADE residual
blocks with widths 16, 16, 16, 8, 4, 2, 1 x 64 from a grid of ``width / 32``; a per-image noise
vector z ~ N(0, I) (64-d) is broadcast over all pixels and concatenated to the one-hot map, and
this tensor both starts the generator (fc conv on its nearest-downsampled copy) and conditions
every SPADE layer. VA-OASIS (xml94/VASIS ``VA-OASIS``) removes the 3D noise and swaps the norms.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from sislab.errors import SpecError
from sislab.models.blocks.spade_resblock import ConvPadding, SpadeResBlock, spade_norm_factory
from sislab.models.generators.spade import ResolutionNormFactory
from sislab.models.norms.spade import ParamFreeNorm

# OASIS config.py: num_res_blocks = 6, channels_G = 64 -> [16, 16, 16, 8, 4, 2, 1] x 64.
WIDTH_FACTORS = (16, 16, 16, 8, 4, 2, 1)
NUM_RES_BLOCKS = len(WIDTH_FACTORS) - 1


def oasis_latent_size(height: int, width: int) -> tuple[int, int]:
    """OASIS ``compute_latent_vector_size``: ``w = width / 2**5``, ``h = round(w * H / W)``.

    Raises:
        SpecError: The output size is not the latent grid times 32.
    """
    factor = 2 ** (NUM_RES_BLOCKS - 1)
    w = width // factor
    h = round(w * height / width)
    if w < 1 or h < 1 or (h * factor, w * factor) != (height, width):
        raise SpecError(
            f"image size {height}x{width} does not fit OASIS's generator "
            f"(it upsamples {factor}x from a {h}x{w} grid)",
            fix=f"use a height and width that are multiples of {factor}",
        )
    return h, w


class OasisGenerator(nn.Module):
    """OASIS generator (``OASIS_Generator``).

    Args:
        label_channels: Semantic channels read from the input (one-hot classes, plus the instance
            edge channel only if the method uses it); extra input channels are ignored.
        height: Output height.
        width: Output width.
        ngf: Base width (OASIS ``channels_G``: 64).
        z_dim: Size of the 3D noise vector (OASIS: 64).
        use_3d_noise: Concatenate z to the label map (False: OASIS ``--no_3dnoise``, VA-OASIS).
        use_spectral_norm: Spectral norm on the residual convs (not fc, norms or conv_img).
        norm_factory_at: ``(height, width) -> norm factory`` per block; None: SPADE layers.
        spade_hidden: Hidden width of the default SPADE layers.
        param_free: Parameter-free norm of the default SPADE layers.
        conv_padding: Padding of the residual 3x3 convs (VA-OASIS: ``reflect_after``).
        io_padding: Padding of the first (``fc``) and last (``conv_img``) 3x3 convs: OASIS
            zero-pads them, VA-OASIS ``generator.py`` reflects (``ReflectionPad2d(1)`` + conv).
        norm_input: Module mapping the conditioning map to what the norms read (e.g.
            ``IntraClassOffsets`` for a relative position code); None: the map itself.

    Shapes:
        ``forward(semantics (B, >= label_channels, H, W), z (B, z_dim) | None) -> (B, 3, H, W)``
        in [-1, 1]; z None samples N(0, I) when ``use_3d_noise``.
    """

    def __init__(
        self,
        label_channels: int,
        height: int,
        width: int,
        ngf: int = 64,
        z_dim: int = 64,
        use_3d_noise: bool = True,
        use_spectral_norm: bool = True,
        norm_factory_at: ResolutionNormFactory | None = None,
        spade_hidden: int = 128,
        param_free: ParamFreeNorm = "batch",
        conv_padding: ConvPadding = "zeros",
        norm_input: nn.Module | None = None,
        io_padding: Literal["zeros", "reflect"] = "zeros",
    ) -> None:
        super().__init__()
        self.label_channels = label_channels
        self.norm_input = norm_input if norm_input is not None else nn.Identity()
        self.z_dim = z_dim
        self.use_3d_noise = use_3d_noise
        self.sh, self.sw = oasis_latent_size(height, width)
        cond_nc = label_channels + (z_dim if use_3d_noise else 0)
        self.cond_channels = cond_nc
        channels = [f * ngf for f in WIDTH_FACTORS]
        self.fc = nn.Conv2d(cond_nc, channels[0], 3, padding=1, padding_mode=io_padding)
        blocks = []
        for i in range(NUM_RES_BLOCKS):
            if norm_factory_at is not None:
                factory = norm_factory_at(self.sh * 2**i, self.sw * 2**i)
            else:
                factory = spade_norm_factory(cond_nc, spade_hidden, 3, param_free)
            blocks.append(
                SpadeResBlock(
                    channels[i],
                    channels[i + 1],
                    cond_nc,
                    use_spectral_norm=use_spectral_norm,
                    norm_factory=factory,
                    conv_padding=conv_padding,
                )
            )
        self.body = nn.ModuleList(blocks)
        self.conv_img = nn.Conv2d(channels[-1], 3, 3, padding=1, padding_mode=io_padding)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")

    def condition(self, semantics: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        """The map that starts G and feeds every norm: labels, then z broadcast (if used).

        OASIS puts z in front of the labels; sislab puts it after them so that every norm finds
        the classes in the first channels (the order changes no result, only weight layout).
        """
        seg = semantics[:, : self.label_channels]
        if not self.use_3d_noise:
            if z is not None:
                raise ValueError("z given to an OASIS generator built without 3D noise")
            return seg
        b, _, h, w = seg.shape
        if z is None:
            z = torch.randn(b, self.z_dim, device=seg.device, dtype=seg.dtype)
        return torch.cat([seg, z.view(b, self.z_dim, 1, 1).expand(b, self.z_dim, h, w)], dim=1)

    def forward(self, semantics: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Synthesise an image from the semantic map (fresh 3D noise unless z is given)."""
        seg = self.condition(semantics, z)
        x = self.fc(F.interpolate(seg, size=(self.sh, self.sw), mode="nearest"))
        seg = self.norm_input(seg)
        for i, block in enumerate(self.body):
            x = block(x, seg)
            if i < len(self.body) - 1:
                x = self.up(x)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2, inplace=True)))
