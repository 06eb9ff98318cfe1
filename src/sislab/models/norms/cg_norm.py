"""CG-Norm: conditional group normalisation of GroupDNet (Zhu et al., CVPR 2020, Eq. 3-5).

SPADE whose label MLP is made of group convolutions, so that (with enough groups) each class's
modulation reads only its own label channel. The MLP layout follows the SMIS code's three dataset
modes (``GROUP_SPADE`` in models/networks/normalization.py); see ``cg_mlp_layout``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from sislab.models.norms.modulation import modulate

CgMlpStyle = Literal["deepfashion", "cityscapes", "ade20k"]
"""Label-MLP layout of the SMIS code's ``data_mode`` (DeepFashion, Cityscapes, ADE20K)."""

CgParamFree = Literal["batch", "local_batch", "instance", "group"]
"""Parameter-free norm: ``batch`` (BatchNorm2d; the trainer makes it SyncBatchNorm with
``train.sync_bn``), ``local_batch`` (per-rank statistics that are never synchronised: Table 3's
"w/o SyncBN"), ``instance``, or ``group`` (GroupNorm with the block's group number: "->GroupNorm")."""

LabelInput = Literal["split", "full"]
"""What each group of the MLP's first conv reads: ``split`` (its share of the label channels, as
the SMIS code) or ``full`` (the whole label map, repeated per group: MulNet, whose separate
per-class networks each see the full segmentation)."""

# SMIS normalization.py: nhidden = 128 for DeepFashion ("Yes, hardcoded.", as in SPADE).
DEEPFASHION_HIDDEN = 128


def cg_mlp_layout(style: CgMlpStyle, num_classes: int, groups: int) -> tuple[int, int, int]:
    """Hidden width and group numbers of CG-Norm's label MLP.

    Args:
        style: ``deepfashion``: hidden 128, both convs with the block's groups G;
            ``cityscapes``: hidden ``num_classes * G``, both convs with ``num_classes`` groups;
            ``ade20k``: hidden ``2 * num_classes`` if ``num_classes % G == 0`` else
            ``num_classes * G``, shared conv with ``num_classes`` groups, gamma/beta with G.
        num_classes: Classes of the dataset (the SMIS code's ``label_nc`` = ``semantic_nc``).
        groups: The block's group number G.

    Returns:
        ``(hidden, shared_groups, out_groups)``.
    """
    if style == "deepfashion":
        return DEEPFASHION_HIDDEN, groups, groups
    if style == "cityscapes":
        return num_classes * groups, num_classes, num_classes
    hidden = 2 * num_classes if num_classes % groups == 0 else num_classes * groups
    return hidden, num_classes, groups


class LocalBatchNorm2d(nn.Module):
    """Batch norm without affine parameters that the sync-BN conversion leaves alone.

    Not a ``_BatchNorm`` subclass on purpose: ``convert_sync_batchnorm`` replaces every
    ``_BatchNorm``, and Table 3's "w/o SyncBN" keeps per-GPU statistics.

    Args:
        channels: Normalised channels.
        momentum: Running-statistics momentum (BatchNorm2d's default).
        eps: Added to the variance.
    """

    def __init__(self, channels: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum = momentum
        self.eps = eps
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise with batch statistics in training, running statistics in eval."""
        return F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            training=self.training,
            momentum=self.momentum,
            eps=self.eps,
        )

    def stateless(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """``x -> self(x)`` without the running-statistics update (for ``modulation.modulate``)."""
        if self.training:
            return lambda x: F.batch_norm(x, None, None, training=True, eps=self.eps)
        return lambda x: F.batch_norm(x, self.running_mean, self.running_var, eps=self.eps)


def cg_param_free_norm(kind: CgParamFree, channels: int, groups: int) -> nn.Module:
    """The parameter-free norm of a CG-Norm (see ``CgParamFree``).

    Args:
        kind: Which norm.
        channels: Normalised channels.
        groups: Group number of the block (used by ``group``).

    Returns:
        A norm without learnable parameters.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=False)
    if kind == "local_batch":
        return LocalBatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if kind == "group":
        # P-GDN supp. D: "group numbers equal to their previous convolutional layers".
        return nn.GroupNorm(groups, channels, affine=False)
    raise ValueError(f"unknown param-free norm {kind!r}")


class CGNorm(nn.Module):
    """Conditional group normalisation: ``norm(x) * (1 + gamma(m)) + beta(m)``, grouped MLP.

    The paper's BN affine (Eq. 3) is absorbed into gamma/beta, as the SMIS code does (affine-free
    SyncBN, ``1 + gamma``). No spectral norm in the MLP (SMIS code).

    Args:
        norm_channels: Channels C of the activation (and of gamma, beta).
        label_channels: Channels of the label map this layer receives (before ``full``
            repetition).
        num_classes: Classes of the dataset (sets the MLP layout).
        groups: The block's group number G.
        style: MLP layout (``cg_mlp_layout``).
        param_free: Parameter-free norm.
        label_input: ``split`` or ``full`` (see ``LabelInput``).
        kernel_size: Kernel of the MLP convs (SMIS: ``spadesyncbatch3x3``).

    Shapes:
        ``forward(x (B, C, H, W), segmap (B, label_channels, H0, W0)) -> (B, C, H, W)``.
    """

    def __init__(
        self,
        norm_channels: int,
        label_channels: int,
        num_classes: int,
        groups: int,
        style: CgMlpStyle = "deepfashion",
        param_free: CgParamFree = "batch",
        label_input: LabelInput = "split",
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        hidden, shared_groups, out_groups = cg_mlp_layout(style, num_classes, groups)
        self.repeats = shared_groups if label_input == "full" else 1
        self.param_free_norm = cg_param_free_norm(param_free, norm_channels, groups)
        pad = kernel_size // 2
        in_channels = label_channels * self.repeats
        self.mlp_shared = nn.Sequential(
            nn.Conv2d(in_channels, hidden, kernel_size, padding=pad, groups=shared_groups),
            nn.ReLU(),
        )
        self.mlp_gamma = nn.Conv2d(
            hidden, norm_channels, kernel_size, padding=pad, groups=out_groups
        )
        self.mlp_beta = nn.Conv2d(
            hidden, norm_channels, kernel_size, padding=pad, groups=out_groups
        )

    def forward(
        self, x: torch.Tensor, segmap: torch.Tensor, negative_slope: float | None = None
    ) -> torch.Tensor:
        """Normalise ``x`` and modulate it with gamma, beta predicted from ``segmap``.

        ``negative_slope``: the leaky ReLU the block applies next, fused with the modulation
        (``modulation.modulate``); None returns the pre-activation.
        """
        segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        if self.repeats > 1:
            segmap = segmap.repeat(1, self.repeats, 1, 1)
        actv = self.mlp_shared(segmap)
        gamma, beta = self.mlp_gamma(actv), self.mlp_beta(actv)
        return modulate(self.param_free_norm, x, gamma, beta, negative_slope)
