"""SPADE's image encoder (``ConvEncoder``) for multi-modal synthesis, and the VAE sampling step."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from sislab.models.convs.spectral_norm import spectral_norm

# SPADE code: the last feature map is s0 x s0 = 4 x 4 before the two linear heads.
LATENT_GRID = 4


def _sn_conv_in(fin: int, fout: int, use_spectral_norm: bool) -> nn.Sequential:
    """conv3x3 s2 (bias removed) + InstanceNorm, SPADE's ``norm_E='spectralinstance'``."""
    conv = nn.Conv2d(fin, fout, 3, stride=2, padding=1, bias=False)
    if use_spectral_norm:
        conv = spectral_norm(conv)
    return nn.Sequential(conv, nn.InstanceNorm2d(fout, affine=False))


class ConvEncoder(nn.Module):
    """Encode an RGB image to the mean and log-variance of a Gaussian over z.

    Five (six when ``crop_size >= 256``, as in SPADE's code) conv3x3 stride-2 layers,
    3 -> ndf -> 2ndf -> 4ndf -> 8ndf -> 8ndf (-> 8ndf), each with spectral norm and InstanceNorm
    and LReLU(0.2) between and after them, then ``Linear(8 ndf * 4 * 4 -> z_dim)`` for mu and for
    logvar. The input is bilinearly resized to 256x256 (128x128 without the sixth layer).

    Deviation: SPADE's code always resizes to 256, which leaves an 8x8 map and a shape error in
    its linear heads when crop_size < 256; resizing to 128 in that case keeps the 4x4 grid.

    Args:
        crop_size: SPADE's ``crop_size`` (the output width); decides the sixth layer.
        ndf: Base width (SPADE code: ``ndf = opt.ngf``).
        z_dim: Size of mu and logvar (SPADE code: 256).
        use_spectral_norm: Spectral norm on the convs (``norm_E='spectralinstance'``).

    Shapes:
        ``forward(image (B, 3, H, W) in [-1, 1]) -> (mu (B, z_dim), logvar (B, z_dim))``.
    """

    def __init__(
        self, crop_size: int, ndf: int = 64, z_dim: int = 256, use_spectral_norm: bool = True
    ) -> None:
        super().__init__()
        self.has_layer6 = crop_size >= 256
        self.input_size = 256 if self.has_layer6 else 128
        widths = [3, ndf, 2 * ndf, 4 * ndf, 8 * ndf, 8 * ndf]
        if self.has_layer6:
            widths.append(8 * ndf)
        self.layers = nn.ModuleList(
            _sn_conv_in(fin, fout, use_spectral_norm) for fin, fout in itertools.pairwise(widths)
        )
        flat = 8 * ndf * LATENT_GRID * LATENT_GRID
        self.fc_mu = nn.Linear(flat, z_dim)
        self.fc_var = nn.Linear(flat, z_dim)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(mu, logvar)`` of the posterior over z for each image."""
        x = image
        if x.shape[2:] != (self.input_size, self.input_size):
            x = F.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
            )
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.2, inplace=True)
        x = x.flatten(1)
        return self.fc_mu(x), self.fc_var(x)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Sample ``z = mu + eps * exp(logvar / 2)``, ``eps ~ N(0, I)`` (SPADE ``reparameterize``)."""
    std = torch.exp(0.5 * logvar)
    # Drawn in the logical (NCHW) order whatever the layout: randn_like fills a channels-last
    # GroupDNet latent in memory order, a different sample from the same seed.
    return torch.randn(std.shape, dtype=std.dtype, device=std.device) * std + mu
