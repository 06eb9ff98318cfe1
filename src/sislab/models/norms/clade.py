"""CLADE: class-adaptive (de)normalisation and its ICPE variant (Tan et al., TPAMI 2021).

Follows tzt101/CLADE ``models/networks/normalization.py`` (``SPADELight``, ``ClassAffine``):
gamma and beta are rows of two learnable per-class tables looked up at each pixel's class, with no
convolution on the label map; with instance maps the edge channel becomes one extra output
channel through a 1x1 conv, so the convs that read a CLADE output take ``C + 1`` channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sislab.models.layout import from_channels_last_view
from sislab.models.norms.modulation import activate, modulate
from sislab.models.norms.spade import ParamFreeNorm, param_free_norm


def class_lookup(table: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Rows of ``table`` at each pixel's class (CLADE's ``affine_embed``).

    Args:
        table: (L, C) per-class values.
        classes: (B, H, W) int64 class ids in ``[0, L)``.

    Returns:
        (B, C, H, W) map.
    """
    return from_channels_last_view(F.embedding(classes, table))


def class_lookups(
    tables: tuple[torch.Tensor, ...], classes: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """``class_lookup`` of several (L, C_i) tables in one gather (and one gather backward).

    Returns (B, C_i, H, W) views of one (B, H, W, sum C_i) map, in the order of ``tables``.
    """
    widths = [table.shape[1] for table in tables]
    joined = class_lookup(torch.cat(tables, dim=1), classes)
    return tuple(joined.split(widths, dim=1))


class ClassAffine(nn.Module):
    """Per-class gamma/beta tables, optionally modulated by CLADE-ICPE's intra-class offsets.

    Args:
        num_classes: Rows L of the tables (classes incl. don't-care, no instance channel).
        channels: Columns C (channels modulated).
        use_offsets: CLADE-ICPE (``--add_dist``): ``gamma * (1 + conv_w(d))``,
            ``beta * (1 + conv_b(d))`` with two zero-initialised Conv1x1(2 -> 1) on the offsets d.

    Shapes:
        ``forward(classes (B, H, W), offsets (B, 2, H, W) | None) -> (gamma, beta)``, each
        (B, C, H, W).
    """

    def __init__(self, num_classes: int, channels: int, use_offsets: bool = False) -> None:
        super().__init__()
        # CLADE ClassAffine: weight ~ U[0, 1), bias = 0.
        self.weight = nn.Parameter(torch.rand(num_classes, channels))
        self.bias = nn.Parameter(torch.zeros(num_classes, channels))
        self.use_offsets = use_offsets
        if use_offsets:
            self.dist_conv_w = nn.Conv2d(2, 1, 1)
            self.dist_conv_b = nn.Conv2d(2, 1, 1)
            for conv in (self.dist_conv_w, self.dist_conv_b):
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)

    def forward(
        self, classes: torch.Tensor, offsets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Look up gamma and beta; modulate them with the offsets when ICPE is on."""
        gamma, beta = class_lookups((self.weight, self.bias), classes)
        if self.use_offsets:
            if offsets is None:
                raise ValueError("CLADE-ICPE needs the intra-class offsets")
            # CLADE ClassAffine(add_dist): both gamma and beta are modulated multiplicatively.
            gamma = gamma * (1 + self.dist_conv_w(offsets))
            beta = beta * (1 + self.dist_conv_b(offsets))
        return gamma, beta


def split_norm_input(
    segmap: torch.Tensor, num_classes: int, use_instance: bool, num_offsets: int
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Split what a norm layer reads into classes, instance edges and offsets.

    Args:
        segmap: (B, num_classes [+ 1 instance edge] [+ num_offsets], H, W), already resized.
        num_classes: One-hot class channels.
        use_instance: Whether an instance edge channel follows the classes.
        num_offsets: Trailing offset channels (0 or 2).

    Returns:
        ``(one-hot (B, num_classes + inst, H, W), edges (B, 1, H, W) | None,
        offsets (B, num_offsets, H, W) | None)``; the first keeps the edge channel (SPADE's MLP
        reads it).
    """
    n_sem = num_classes + int(use_instance)
    semantics = segmap[:, :n_sem]
    edges = segmap[:, num_classes:n_sem] if use_instance else None
    offsets = segmap[:, n_sem : n_sem + num_offsets] if num_offsets else None
    return semantics, edges, offsets


class CLADE(nn.Module):
    """``out = norm(x) * gamma[class] + beta[class]`` (no "1 +", unlike SPADE), plus the edge
    feature as one more channel when instances are used.

    Args:
        norm_channels: Channels C of the activation.
        num_classes: One-hot class channels L (the tables' rows).
        use_instance: The input carries an instance edge channel after the classes; the output
            then has ``C + 1`` channels (``Conv1x1(1 -> 1)`` of the edges, CLADE ``inst_conv``).
        use_offsets: CLADE-ICPE; the input carries 2 offset channels last.
        param_free: Parameter-free norm, ``batch`` or ``instance``.

    Shapes:
        ``forward(x (B, C, H, W), segmap (B, L [+1] [+2], H0, W0)) -> (B, C [+1], H, W)``.
    """

    def __init__(
        self,
        norm_channels: int,
        num_classes: int,
        use_instance: bool,
        use_offsets: bool = False,
        param_free: ParamFreeNorm = "batch",
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.use_instance = use_instance
        self.num_offsets = 2 if use_offsets else 0
        self.param_free_norm = param_free_norm(param_free, norm_channels)
        self.class_specified_affine = ClassAffine(num_classes, norm_channels, use_offsets)
        if use_instance:
            self.inst_conv = nn.Conv2d(1, 1, 1)

    def forward(
        self, x: torch.Tensor, segmap: torch.Tensor, negative_slope: float | None = None
    ) -> torch.Tensor:
        """Normalise ``x`` and apply the class-wise affine transform.

        ``negative_slope``: the leaky ReLU the block applies next (to the edge feature too),
        fused with the modulation (``modulation.modulate``); None returns the pre-activation.
        """
        segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        semantics, edges, offsets = split_norm_input(
            segmap, self.num_classes, self.use_instance, self.num_offsets
        )
        classes = semantics[:, : self.num_classes].argmax(dim=1)
        gamma, beta = self.class_specified_affine(classes, offsets)
        out = modulate(self.param_free_norm, x, gamma, beta, negative_slope, one_plus=False)
        if edges is not None:
            out = torch.cat([out, activate(self.inst_conv(edges), negative_slope)], dim=1)
        return out
