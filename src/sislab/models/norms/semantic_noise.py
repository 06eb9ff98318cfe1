"""VASIS's semantic noise: random noise scaled and shifted by learnable per-class tables.

Follows xml94/VASIS ``normalization.py`` (``affine_noise``): for class k at a pixel,
``gamma_noise = n1 * A_g[k] + B_g[k]`` and ``beta_noise = n2 * A_b[k] + B_b[k]`` with fresh noise
n1, n2 on every forward pass; A ~ U[0, 1) and B = 0 at init. The paper (Sec. 3.2) says the noise
is N(0, 1), the code samples ``torch.rand``, i.e. U[0, 1); ``distribution`` chooses.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from sislab.models.norms.clade import class_lookups

NoiseDistribution = Literal["uniform", "normal"]
"""``uniform``: U[0, 1) as the VASIS code (which produced the published numbers); ``normal``:
N(0, 1) as the paper's text."""

NoiseMode = Literal["affine", "rand"]
"""``affine``: per-class scale and shift (the paper's semantic noise); ``rand``: the noise itself,
no tables (VASIS ``random_cat``, Table 5 "rand")."""


class SemanticNoise(nn.Module):
    """Per-class scaled and shifted noise for one norm layer.

    Args:
        num_classes: Rows of the tables (the layer's label channels).
        table_channels: Columns of the tables: the noise channels, or 1 (Table 5 "one-channel":
            one scale/shift per class shared by all noise channels).
        noise_channels: Channels of the sampled noise (and of the outputs).
        mode: ``affine`` or ``rand``.
        distribution: ``uniform`` or ``normal``.

    Shapes:
        ``forward(classes (B, H, W)) -> (gamma_noise, beta_noise)``, each
        (B, noise_channels, H, W).
    """

    def __init__(
        self,
        num_classes: int,
        table_channels: int,
        noise_channels: int,
        mode: NoiseMode = "affine",
        distribution: NoiseDistribution = "uniform",
    ) -> None:
        super().__init__()
        self.noise_channels = noise_channels
        self.mode = mode
        self.distribution = distribution
        if mode == "affine":
            self.gamma_noise_gamma = nn.Parameter(torch.rand(num_classes, table_channels))
            self.beta_noise_gamma = nn.Parameter(torch.rand(num_classes, table_channels))
            self.gamma_noise_beta = nn.Parameter(torch.zeros(num_classes, table_channels))
            self.beta_noise_beta = nn.Parameter(torch.zeros(num_classes, table_channels))

    def sample(self, classes: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Fresh noise of shape (B, noise_channels, H, W)."""
        b, h, w = classes.shape
        shape = (b, self.noise_channels, h, w)
        if self.distribution == "normal":
            return torch.randn(shape, device=classes.device, dtype=dtype)
        return torch.rand(shape, device=classes.device, dtype=dtype)

    def forward(
        self, classes: torch.Tensor, dtype: torch.dtype = torch.float32
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample noise and scale/shift it with the tables at each pixel's class."""
        n1, n2 = self.sample(classes, dtype), self.sample(classes, dtype)
        if self.mode == "rand":
            return n1, n2
        scale_g, shift_g, scale_b, shift_b = class_lookups(
            (
                self.gamma_noise_gamma,
                self.gamma_noise_beta,
                self.beta_noise_gamma,
                self.beta_noise_beta,
            ),
            classes,
        )
        return torch.addcmul(shift_g, n1, scale_g), torch.addcmul(shift_b, n2, scale_b)
