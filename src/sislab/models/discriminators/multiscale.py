"""SPADE's multi-scale PatchGAN discriminator (``MultiscaleDiscriminator`` of ``NLayer`` Ds)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sislab.models.convs.spectral_norm import spectral_norm

# SPADE code NLayerDiscriminator: kw = 4, padw = ceil((kw - 1) / 2) = 2, channel cap 512.
KERNEL = 4
PADDING = 2
MAX_CHANNELS = 512


class NLayerDiscriminator(nn.Module):
    """One PatchGAN: conv s2 + LReLU, (n_layers-1) x [conv + IN + LReLU], conv -> 1 logit map.

    The middle convs use stride 2 except the last of them (stride 1), drop their bias and get
    spectral norm + InstanceNorm (SPADE ``norm_D='spectralinstance'``); the first and last convs
    have neither.

    Args:
        input_nc: Input channels (semantic_nc + 3).
        ndf: Width of the first conv; doubled per layer up to 512.
        n_layers: Convs before the final logit conv.
        use_spectral_norm: Spectral norm on the middle convs.

    Shapes:
        ``forward(x (B, input_nc, H, W)) -> [n_layers + 1 tensors]``, the last the logit map.
    """

    def __init__(
        self, input_nc: int, ndf: int = 64, n_layers: int = 4, use_spectral_norm: bool = True
    ) -> None:
        super().__init__()
        nf = ndf
        stages: list[nn.Sequential] = [
            nn.Sequential(
                nn.Conv2d(input_nc, nf, KERNEL, stride=2, padding=PADDING), nn.LeakyReLU(0.2, True)
            )
        ]
        for n in range(1, n_layers):
            nf_prev, nf = nf, min(nf * 2, MAX_CHANNELS)
            stride = 1 if n == n_layers - 1 else 2
            conv = nn.Conv2d(nf_prev, nf, KERNEL, stride=stride, padding=PADDING, bias=False)
            if use_spectral_norm:
                conv = spectral_norm(conv)
            stages.append(
                nn.Sequential(conv, nn.InstanceNorm2d(nf, affine=False), nn.LeakyReLU(0.2, True))
            )
        stages.append(nn.Sequential(nn.Conv2d(nf, 1, KERNEL, stride=1, padding=PADDING)))
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return every stage's output; the last one is the patch logit map."""
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class MultiscaleDiscriminator(nn.Module):
    """``num_d`` PatchGANs on the input downsampled 2x per scale (avg-pool 3, stride 2).

    Args:
        semantic_nc: Channels of the semantic map; the input is it concatenated with RGB.
        ndf: Width of each PatchGAN's first conv.
        num_d: Number of scales.
        n_layers: Layers per PatchGAN (SPADE's ``n_layers_D``).
        use_spectral_norm: Spectral norm on the middle convs.

    Shapes:
        ``forward(semantics (B, semantic_nc, H, W), image (B, 3, H, W))`` ->
        ``num_d`` lists (finest scale first) of ``n_layers + 1`` feature maps, last = logits.
    """

    def __init__(
        self,
        semantic_nc: int,
        ndf: int = 64,
        num_d: int = 2,
        n_layers: int = 4,
        use_spectral_norm: bool = True,
    ) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            NLayerDiscriminator(semantic_nc + 3, ndf, n_layers, use_spectral_norm)
            for _ in range(num_d)
        )

    def forward(self, semantics: torch.Tensor, image: torch.Tensor) -> list[list[torch.Tensor]]:
        """Score ``image`` given ``semantics`` at every scale, keeping intermediate features."""
        # SPADE pix2pix_model.discriminate: D input = cat(semantics, image) along channels.
        x = torch.cat([semantics, image], dim=1)
        results = []
        for i, discriminator in enumerate(self.discriminators):
            if i > 0:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            results.append(discriminator(x))
        return results
