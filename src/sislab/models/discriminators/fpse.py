"""CC-FPSE's feature-pyramid semantics-embedding discriminator, as SC-GAN's code defines it."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from sislab.models.convs.spectral_norm import spectral_norm


def _conv_in_lrelu(
    fin: int, fout: int, kernel_size: int, stride: int, use_spectral_norm: bool
) -> nn.Sequential:
    """conv (no bias) -> InstanceNorm -> LReLU(0.2): the code's ``norm_D='spectralinstance'``."""
    conv = nn.Conv2d(fin, fout, kernel_size, stride=stride, padding=kernel_size // 2, bias=False)
    if use_spectral_norm:
        conv = spectral_norm(conv)
    return nn.Sequential(conv, nn.InstanceNorm2d(fout, affine=False), nn.LeakyReLU(0.2, True))


class FPSEDiscriminator(nn.Module):
    """Feature-pyramid D on the image with a semantic-embedding (projection) score per level.

    Follows ``FPSEDiscriminator`` of dvlab-research/SCGAN (model/net/discriminator.py), ndf = 64:
    bottom-up conv3x3 s2 on the RGB image only, 3 -> ndf -> 2ndf -> 4ndf -> 8ndf -> 8ndf
    (1/2 .. 1/32); lateral conv1x1 to 4ndf on levels 2..5; top-down bilinear x2 + add; conv3x3
    (4ndf -> 2ndf) at 1/4, 1/8, 1/16. All these convs: spectral norm, no bias, InstanceNorm,
    LReLU(0.2). Shared heads without spectral norm: ``tf`` conv1x1(2ndf -> 1) and ``seg``
    conv1x1(2ndf -> 2ndf); the semantic map goes through ``embedding`` conv1x1(L -> 2ndf) and
    2x2 average pooling to each level; the level's logit map is
    ``tf(f) + sum_c(seg(f) * embedding_pooled)``.

    Output convention: the multi-scale D's list of lists (one inner list per level, features
    first, logits last), with the four encoder features placed at the level of their
    resolution: ``[[f_1/4, logit_1/4], [f_1/8, logit_1/8], [f_1/16, f_1/32, logit_1/16]]``.
    The hinge loss averaged over the inner lists' last entries equals the code's. The code's
    feature matching weights each of the 4 features by ``lambda_feat / 4``; a loss that weights
    every non-final entry by ``lambda_feat / len(outputs)`` gives ``lambda_feat / 3``, so it
    must be scaled by 3/4 to match (see :attr:`NUM_FEATURES`).

    Args:
        semantic_nc: Channels L of the semantic map.
        ndf: Base width.
        use_spectral_norm: Spectral norm on the encoder, lateral and final convs.

    Shapes:
        ``forward(semantics (B, L, H, W), image (B, 3, H, W))`` -> 3 lists as above, logits of
        shape (B, 1, H/4, W/4), (B, 1, H/8, W/8), (B, 1, H/16, W/16). H, W multiples of 32.
    """

    # The code's feature matching divides by the number of features, not of levels.
    NUM_FEATURES = 4

    def __init__(self, semantic_nc: int, ndf: int = 64, use_spectral_norm: bool = True) -> None:
        super().__init__()
        sn = use_spectral_norm
        widths = [3, ndf, 2 * ndf, 4 * ndf, 8 * ndf, 8 * ndf]
        self.encoder = nn.ModuleList(
            _conv_in_lrelu(fin, fout, 3, 2, sn) for fin, fout in itertools.pairwise(widths)
        )
        # Laterals on encoder levels 2..5 (1/4 .. 1/32).
        self.lateral = nn.ModuleList(_conv_in_lrelu(w, 4 * ndf, 1, 1, sn) for w in widths[2:])
        # Final convs at 1/4, 1/8, 1/16.
        self.final = nn.ModuleList(_conv_in_lrelu(4 * ndf, 2 * ndf, 3, 1, sn) for _ in range(3))
        self.tf = nn.Conv2d(2 * ndf, 1, 1)
        self.seg = nn.Conv2d(2 * ndf, 2 * ndf, 1)
        self.embedding = nn.Conv2d(semantic_nc, 2 * ndf, 1)

    def forward(self, semantics: torch.Tensor, image: torch.Tensor) -> list[list[torch.Tensor]]:
        """Score ``image`` against ``semantics`` at 1/4, 1/8 and 1/16 resolution."""
        features = []
        x = image
        for layer in self.encoder:
            x = layer(x)
            features.append(x)
        encoded = features[1:]  # 1/4, 1/8, 1/16, 1/32
        top_down = [self.lateral[3](encoded[3])]
        for level in (2, 1, 0):
            up = F.interpolate(top_down[-1], scale_factor=2, mode="bilinear", align_corners=False)
            top_down.append(up + self.lateral[level](encoded[level]))
        pyramid = top_down[::-1][:3]  # 1/4, 1/8, 1/16
        embedded = F.avg_pool2d(self.embedding(semantics), 2)
        logits = []
        for final, feature in zip(self.final, pyramid, strict=True):
            embedded = F.avg_pool2d(embedded, 2)
            f = final(feature)
            logits.append(self.tf(f) + (self.seg(f) * embedded).sum(dim=1, keepdim=True))
        return [
            [encoded[0], logits[0]],
            [encoded[1], logits[1]],
            [encoded[2], encoded[3], logits[2]],
        ]
