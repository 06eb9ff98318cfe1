"""GroupDNet's group encoder: class-split input, group convs, per-class mean and variance maps
(P-GDN Sec. 3.3 Eq. 2; SMIS code models/networks/encoder.py ``ConvEncoder``, smis_model.py
``trans_img``)."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from sislab.models.convs.spectral_norm import spectral_norm
from sislab.models.generators.groupdnet import LATENT_CHANNELS

EncoderNorm = Literal["instance", "group"]
"""InstanceNorm (SMIS ``norm_E='spectralinstance'``) or GroupNorm with the conv's groups
(Table 3 "->GroupNorm")."""


def encoder_widths(ndf: int, num_layers: int) -> list[int]:
    """Output channels of each stride-2 layer: ndf, 2ndf, 4ndf, 8ndf, 8ndf, ... (SPADE/SMIS)."""
    return [ndf * min(2**i, 8) for i in range(num_layers)]


def crop_to_box(masked: torch.Tensor) -> torch.Tensor:
    """Crop one class's masked image to its bounding box and resize it back (nearest).

    SMIS ``trans_img``: the box spans the rows and columns whose SIGNED sums of the masked image
    (over the 3 channels, then over the other axis) are non-zero, not those holding a non-zero
    pixel: a row or column whose values cancel exactly is left out, and a class whose column
    sums are all 0 is treated as absent (returned uncropped). An absent class stays zero.

    Args:
        masked: (3, H, W) image times the class mask.

    Returns:
        (3, H, W) crop resized to the full size.
    """
    # SMIS trans_img: c_sum = seg_image.sum(dim=0); y_seg = c_sum.sum(dim=0) (per column),
    # x_seg = c_sum.sum(dim=1) (per row); the same reductions, so the same exact zeros
    channel_sum = masked.sum(0)
    cols = channel_sum.sum(0).nonzero()
    rows = channel_sum.sum(1).nonzero()
    if cols.numel() == 0 or rows.numel() == 0:
        return masked
    crop = masked[:, rows[0, 0] : rows[-1, 0] + 1, cols[0, 0] : cols[-1, 0] + 1]
    return F.interpolate(crop[None], size=masked.shape[1:], mode="nearest")[0]


def split_by_class(
    image: torch.Tensor, semantics: torch.Tensor, num_classes: int, use_crop: bool = True
) -> torch.Tensor:
    """The encoder input ``S = cat_c (M_c * X)`` (P-GDN Eq. 2), class-major channels.

    Args:
        image: (B, 3, H, W) in [-1, 1].
        semantics: (B, >= num_classes, H, W); the first ``num_classes`` channels are the masks
            (an instance-edge channel after them is ignored, as SMIS does on Cityscapes).
        num_classes: Classes C.
        use_crop: Also crop each class to its box and resize it (SMIS code); False: the paper's
            plain masking.

    Returns:
        (B, 3 * C, H, W); channels ``3c .. 3c+2`` are class c's image.
    """
    masks = semantics[:, :num_classes].unsqueeze(2)  # (B, C, 1, H, W)
    split = image.unsqueeze(1) * masks  # (B, C, 3, H, W)
    if use_crop:
        split = torch.stack(
            [torch.stack([crop_to_box(split[b, c]) for c in range(num_classes)]) for b in
             range(split.shape[0])]
        )  # fmt: skip
    return split.flatten(1, 2)


class GroupEncoder(nn.Module):
    """Per-class image encoder producing mean and log-variance maps of each class's latent.

    ``log2(H / h)`` group conv3x3 stride-2 layers (6 at 256 with a 4x4 latent grid, as SMIS),
    each with spectral norm + InstanceNorm (bias removed) and LReLU(0.2), then two group
    conv3x3 heads ``8 ndf -> 8 C`` (mu, logvar).

    Args:
        num_classes: Classes C.
        height: Input height.
        width: Input width.
        latent_hw: ``(h, w)`` of the decoder's latent grid.
        ndf: Base width (SMIS code: DeepFashion 256, Cityscapes 350, ADE20K 604).
        groups: One group number per layer plus one for the heads; C everywhere keeps classes
            independent (GroupDNet); 1 is a regular encoder (VSPADE, GroupDec).
        use_split: Feed ``cat_c(M_c X)`` (False: Table 3 "w/o split"; the whole image, repeated
            per group when the first layer is grouped).
        use_crop: Crop and resize each class (SMIS ``trans_img``).
        latent_is_map: Mean/variance maps; False: global average pooling to vectors
            (Table 3 "w/o map").
        norm: ``instance`` or ``group``.
        use_spectral_norm: Spectral norm on the stride-2 convs.

    Shapes:
        ``forward(image (B, 3, H, W), semantics (B, L, H, W)) -> (mu, logvar)``, each
        (B, C, 8, h, w) (h = w = 1 without maps).
    """

    def __init__(
        self,
        num_classes: int,
        height: int,
        width: int,
        latent_hw: tuple[int, int],
        ndf: int,
        groups: list[int],
        use_split: bool = True,
        use_crop: bool = True,
        latent_is_map: bool = True,
        norm: EncoderNorm = "instance",
        use_spectral_norm: bool = True,
    ) -> None:
        super().__init__()
        num_layers = round(math.log2(height / latent_hw[0]))
        widths = encoder_widths(ndf, num_layers)
        if len(groups) != num_layers + 1:
            raise ValueError(
                f"the encoder has {num_layers} layers and the heads: {num_layers + 1} group "
                f"numbers needed, got {groups}"
            )
        self.num_classes = num_classes
        self.use_split = use_split
        self.use_crop = use_crop
        self.latent_is_map = latent_is_map
        self.in_channels = 3 * num_classes if (use_split or groups[0] > 1) else 3
        layers = []
        fin = self.in_channels
        for fout, g in zip(widths, groups[:-1], strict=True):
            conv = nn.Conv2d(fin, fout, 3, stride=2, padding=1, bias=False, groups=g)
            if use_spectral_norm:
                conv = spectral_norm(conv)
            if norm == "instance":
                norm_layer: nn.Module = nn.InstanceNorm2d(fout, affine=False)
            else:
                norm_layer = nn.GroupNorm(g, fout, affine=False)
            layers.append(nn.Sequential(conv, norm_layer))
            fin = fout
        self.layers = nn.ModuleList(layers)
        out = num_classes * LATENT_CHANNELS
        self.fc_mu = nn.Conv2d(fin, out, 3, padding=1, groups=groups[-1])
        self.fc_var = nn.Conv2d(fin, out, 3, padding=1, groups=groups[-1])

    def encoder_input(self, image: torch.Tensor, semantics: torch.Tensor) -> torch.Tensor:
        """What the first layer reads: the class split, the repeated image, or the image."""
        if self.use_split:
            return split_by_class(image, semantics, self.num_classes, self.use_crop)
        if self.in_channels > 3:
            return image.repeat(1, self.num_classes, 1, 1)
        return image

    def forward(
        self, image: torch.Tensor, semantics: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(mu, logvar)`` of every class's latent, (B, C, 8, h, w) each."""
        x = self.encoder_input(image, semantics)
        for layer in self.layers:
            x = F.leaky_relu(layer(x), 0.2, inplace=True)
        mu, logvar = self.fc_mu(x), self.fc_var(x)
        if not self.latent_is_map:
            # P-GDN supp. D: global average pooling at the end of E instead of maps.
            mu, logvar = mu.mean((2, 3), keepdim=True), logvar.mean((2, 3), keepdim=True)
        shape = (x.shape[0], self.num_classes, LATENT_CHANNELS, *mu.shape[2:])
        return mu.reshape(shape), logvar.reshape(shape)
