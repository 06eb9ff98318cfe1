"""OASIS's discriminator: a U-Net that segments an image into N semantic classes plus "fake".

Follows boschresearch/OASIS ``models/discriminator.py`` (``OASIS_Discriminator``,
``residual_block_D``): six down and six up residual blocks, channels 3-128-128-256-256-512-512,
skip concatenations in the decoder, a 1x1 conv to ``num_classes + 1`` logits at input resolution;
spectral norm on every conv except the last, no other normalisation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sislab.models.convs.spectral_norm import spectral_norm

# OASIS discriminator.py: self.channels = [3, 128, 128, 256, 256, 512, 512].
CHANNELS = (3, 128, 128, 256, 256, 512, 512)
LAST_UP_CHANNELS = 64


class _HalfAvgPoolFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        # avg_pool2d's backward for a 2x2 window: each input pixel gets a quarter of its
        # window's gradient (x * 0.25 == x / 4 exactly).
        return F.interpolate(grad * 0.25, scale_factor=2.0, mode="nearest")


class HalfAvgPool(nn.Module):
    """``nn.AvgPool2d(2)`` (bit-identical values and gradients) that keeps nothing for its
    backward: ``avg_pool2d``'s autograd node keeps its whole input only to read its shape (at
    256x512, 300 MB of OASIS's D step). Its backward, a nearest upsampling of the quarter
    gradient, is also faster on CPU than ``avg_pool2d``'s.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H / 2, W / 2); H and W even."""
        return _HalfAvgPoolFn.apply(x)


class ResBlockD(nn.Module):
    """OASIS ``residual_block_D``: (LReLU ->) [up ->] conv3x3 -> LReLU -> conv3x3 [-> avgpool].

    Args:
        fin: Input channels.
        fout: Output channels.
        direction: -1 down (avg-pool 2 after the convs), +1 up (nearest x2 before conv1).
        first: The first encoder block: no leading LReLU.
        use_spectral_norm: Spectral norm on the three convs.
    """

    def __init__(
        self, fin: int, fout: int, direction: int, first: bool, use_spectral_norm: bool
    ) -> None:
        super().__init__()

        def sn(conv: nn.Conv2d) -> nn.Module:
            return spectral_norm(conv) if use_spectral_norm else conv

        self.direction = direction
        conv1: list[nn.Module] = [] if first else [nn.LeakyReLU(0.2)]
        if direction > 0:
            conv1.append(nn.Upsample(scale_factor=2))
        conv1.append(sn(nn.Conv2d(fin, fout, 3, padding=1)))
        self.conv1 = nn.Sequential(*conv1)
        # In place: conv1's output feeds nothing else, so autograd keeps one tensor (the
        # activation, which conv2 keeps as its input anyway) instead of two; leaky_relu_'s
        # backward reads the sign of its result, the same as the input's (bit-identical).
        self.conv2 = nn.Sequential(
            nn.LeakyReLU(0.2, inplace=True), sn(nn.Conv2d(fout, fout, 3, padding=1))
        )
        self.learned_shortcut = fin != fout
        if self.learned_shortcut:
            self.conv_s = sn(nn.Conv2d(fin, fout, 1))
        self.sampling = nn.Upsample(scale_factor=2) if direction > 0 else HalfAvgPool()

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        """Resampled (learned when channels change) shortcut, its 1x1 conv at the lower of the
        two resolutions.

        OASIS upsamples before the 1x1 conv and pools after it (but in the first block); a 1x1
        conv commutes with nearest upsampling and with average pooling (linear maps: the same
        dot products, summed in another order), so here it sees a quarter of the pixels, and
        autograd keeps its low-resolution input instead of a full-resolution one (the
        upsampled copy is the largest tensor of the last up block).
        """
        if self.direction < 0:
            x = self.sampling(x)
        if self.learned_shortcut:
            x = self.conv_s(x)
        if self.direction > 0:
            x = self.sampling(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual sum of both branches."""
        dx = self.conv2(self.conv1(x))
        if self.direction < 0:
            dx = self.sampling(dx)
        return self.shortcut(x) + dx


class OasisUnetDiscriminator(nn.Module):
    """OASIS U-Net discriminator with ``num_classes + 1`` output channels (channel 0 = fake).

    Args:
        num_classes: Semantic classes N (one-hot channels, don't-care included, no instance).
        use_spectral_norm: Spectral norm on the residual blocks' convs (OASIS default on).

    Shapes:
        ``forward(image (B, 3, H, W)) -> (B, num_classes + 1, H, W)`` logits; H and W must be
        multiples of 64.
    """

    conditional = False
    """Reads the image only (no label map), unlike SPADE's D; model summaries check this."""

    def __init__(self, num_classes: int, use_spectral_norm: bool = True, ndf: int = 64) -> None:
        super().__init__()
        # ndf 64 gives OASIS's fixed widths; other values scale them (smoke tests, small GPUs).
        ch = (3, *(c * ndf // 64 for c in CHANNELS[1:]))
        last_up = LAST_UP_CHANNELS * ndf // 64
        n = len(ch) - 1
        self.body_down = nn.ModuleList(
            ResBlockD(ch[i], ch[i + 1], -1, i == 0, use_spectral_norm) for i in range(n)
        )
        up = [ResBlockD(ch[-1], ch[-2], 1, False, use_spectral_norm)]
        for i in range(1, n - 1):
            up.append(ResBlockD(2 * ch[-1 - i], ch[-2 - i], 1, False, use_spectral_norm))
        up.append(ResBlockD(2 * ch[1], last_up, 1, False, use_spectral_norm))
        self.body_up = nn.ModuleList(up)
        self.layer_up_last = nn.Conv2d(last_up, num_classes + 1, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Per-pixel N+1-class logits of the image."""
        x = image
        skips = []
        for block in self.body_down:
            x = block(x)
            skips.append(x)
        x = self.body_up[0](x)
        for i in range(1, len(self.body_down)):
            x = self.body_up[i](torch.cat([skips[-i - 1], x], dim=1))
        return self.layer_up_last(x)
