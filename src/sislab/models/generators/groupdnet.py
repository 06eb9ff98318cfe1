"""GroupDNet's decoder: CG-Blocks whose group numbers decrease stage by stage (SMIS code
``DeepFashionGenerator`` / ``CityscapesGenerator`` / ``ADE20KGenerator``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sislab.models.blocks.cg_block import CGBlock
from sislab.models.convs.spectral_norm import spectral_norm
from sislab.models.generators.spade import latent_size
from sislab.models.geometry import UpsamplingMode
from sislab.models.norms.cg_norm import CgMlpStyle, CGNorm, CgParamFree, LabelInput

# SMIS code: each class's latent is an 8-channel map (fc_mu: Conv(8 ndf -> 8 * semantic_nc)).
LATENT_CHANNELS = 8


def block_names(upsampling: UpsamplingMode) -> list[str]:
    """Names of the decoder stages in order (SPADE's: head_0, G_middle_0/1, up_0..up_3[, up_4])."""
    names = ["head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3"]
    return [*names, "up_4"] if upsampling == "most" else names


def class_pairs_with_edges(semantics: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Interleave every class channel with the instance-edge channel: (c0, e, c1, e, ...).

    SMIS ``CityscapesGenerator.forward``: each CG-Norm group reads its class and the edges.

    Args:
        semantics: (B, num_classes + 1, H, W), edges last.
        num_classes: Number of one-hot class channels.

    Returns:
        (B, 2 * num_classes, H, W).
    """
    classes = semantics[:, :num_classes].unsqueeze(2)
    edges = semantics[:, num_classes:].unsqueeze(1).expand_as(classes)
    return torch.cat([classes, edges], dim=2).flatten(1, 2)


class GroupDGenerator(nn.Module):
    """fc (group conv on the per-class latent maps) -> CG-Blocks -> [fusion] -> conv_img.

    Args:
        num_classes: One-hot classes C (one latent per class).
        use_instance: Whether the semantics carry an instance-edge channel (then every class is
            paired with it for the CG-Norms, as SMIS does on Cityscapes).
        height: Output height.
        width: Output width.
        widths: ``len(stages) + 1`` channel counts: fc output, then each stage's output.
        groups: One group number per stage (the group-decrease schedule); fc uses ``groups[0]``.
        upsampling: ``normal``, ``more`` (SMIS default) or ``most``.
        cg_style: Label-MLP layout of the CG-Norms.
        param_free: Parameter-free norm inside CG-Norm.
        label_input: ``split`` or ``full`` (MulNet) label input of the CG-Norm MLPs.
        use_spectral_norm: Spectral norm on the CG-Blocks' convs.
        fusion_layers: Regular conv3x3 + LReLU layers before conv_img (MulNet/GroupNet's fusion
            module, P-GDN Fig. 3); 0 for GroupDNet.
        latent_is_map: Latents are (sh, sw) maps; False: vectors broadcast over the grid
            (Table 3 "w/o map").

    Shapes:
        ``forward(semantics (B, semantic_nc, H, W), z (B, C, 8, h, w) | None) -> (B, 3, H, W)``
        with ``(h, w) = latent_shape[2:]``; None samples ``N(0, I)``.
    """

    def __init__(
        self,
        num_classes: int,
        use_instance: bool,
        height: int,
        width: int,
        widths: list[int],
        groups: list[int],
        upsampling: UpsamplingMode = "more",
        cg_style: CgMlpStyle = "deepfashion",
        param_free: CgParamFree = "batch",
        label_input: LabelInput = "split",
        use_spectral_norm: bool = True,
        fusion_layers: int = 0,
        latent_is_map: bool = True,
    ) -> None:
        super().__init__()
        self.names = block_names(upsampling)
        if len(groups) != len(self.names) or len(widths) != len(self.names) + 1:
            raise ValueError(
                f"{len(self.names)} stages ({', '.join(self.names)}) need {len(self.names)} "
                f"group numbers and {len(self.names) + 1} widths; got {groups} and {widths}"
            )
        self.num_classes = num_classes
        self.use_instance = use_instance
        self.upsampling = upsampling
        self.sh, self.sw = latent_size(height, width, upsampling)
        self.latent_is_map = latent_is_map
        label_channels = 2 * num_classes if use_instance else num_classes
        self.fc = nn.Conv2d(
            num_classes * LATENT_CHANNELS, widths[0], 3, padding=1, groups=groups[0]
        )
        for i, name in enumerate(self.names):

            def make(channels: int, g: int = groups[i]) -> CGNorm:
                return CGNorm(
                    channels, label_channels, num_classes, g, cg_style, param_free, label_input
                )

            block = CGBlock(widths[i], widths[i + 1], groups[i], make, use_spectral_norm)
            self.add_module(name, block)
        final = widths[-1]
        fusion: list[nn.Module] = []
        for _ in range(fusion_layers):
            conv = nn.Conv2d(final, final, 3, padding=1)
            fusion += [spectral_norm(conv) if use_spectral_norm else conv, nn.LeakyReLU(0.2, True)]
        self.fusion = nn.Sequential(*fusion)
        self.conv_img = nn.Conv2d(final, 3, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")

    @property
    def latent_shape(self) -> tuple[int, int, int, int]:
        """``(C, 8, h, w)`` of one sample's latent: h, w = the latent grid, or 1, 1 (vectors)."""
        h, w = (self.sh, self.sw) if self.latent_is_map else (1, 1)
        return self.num_classes, LATENT_CHANNELS, h, w

    def sample_latent(
        self, batch_size: int, device: torch.device, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw per-class latents from the prior ``N(0, I)``, (B, C, 8, h, w)."""
        return torch.randn(batch_size, *self.latent_shape, device=device, generator=generator)

    def forward(self, semantics: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Synthesise an image from the label map and the per-class latents.

        Args:
            semantics: (B, semantic_nc, H, W) one-hot classes (+ instance edges).
            z: (B, C, 8, h, w) per-class latents; class c's latent is ``z[:, c]``.

        Returns:
            (B, 3, H, W) image in [-1, 1].
        """
        if z is None:
            z = self.sample_latent(semantics.shape[0], semantics.device)
        # Class-major channels: group c of the fc reads z[:, c] (SMIS: z.view(B, 8 * nc, 4, 4)).
        x = z.flatten(1, 2)
        if not self.latent_is_map:
            x = x.expand(-1, -1, self.sh, self.sw)
        x = self.fc(x)
        seg = semantics
        if self.use_instance:
            seg = class_pairs_with_edges(semantics, self.num_classes)
        for i, name in enumerate(self.names):
            # Upsample before every stage but head_0; 'normal' skips the one before G_middle_1.
            if i > 0 and not (name == "G_middle_1" and self.upsampling == "normal"):
                x = self.up(x)
            x = getattr(self, name)(x, seg)
        x = self.fusion(x)
        # In place on the last block's residual sum, which nothing saves (autograd then keeps
        # the result, conv_img's input, once); not on the fusion's last activation, which does.
        x = F.leaky_relu(x, 0.2, inplace=len(self.fusion) == 0)
        return torch.tanh(self.conv_img(x))


def num_stages(upsampling: UpsamplingMode) -> int:
    """Number of decoder stages (group numbers in a schedule) for an upsampling mode."""
    return 7 + int(upsampling == "most")
