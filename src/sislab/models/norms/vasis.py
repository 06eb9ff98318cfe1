"""VASIS's variation-aware normalisation for SPADE, CLADE and OASIS (Tables 3-5 of the paper).

Follows xml94/VASIS ``VASIS/models/networks/normalization.py`` (``VariationAwareSPADE``,
``VariationAwareCLADE``) and ``VA-OASIS/models/norms.py``. The layout branch (SPADE's MLP or
CLADE's class tables) predicts the first ``C_seg`` channels of gamma and beta, the position code
modulates them, and semantic noise supplies the remaining channels (concatenated, "cat") or is
averaged with a full-width layout branch ("plus"). With noise and "cat", ``C_seg = C // 2``: the
reduced layout-feature width of the paper (Sec. 3.2), which is why VA-SPADE is smaller than SPADE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from sislab.models.norms.clade import ClassAffine, split_norm_input
from sislab.models.norms.modulation import activate, modulate
from sislab.models.norms.position_code import PositionCode, PositionCodeKind
from sislab.models.norms.semantic_noise import NoiseDistribution, SemanticNoise
from sislab.models.norms.spade import ParamFreeNorm, param_free_norm

Layout = Literal["spade", "clade"]
NoiseChannels = Literal["all", "one"]
NoiseCombine = Literal["cat", "plus", "rand"]
Padding = Literal["zeros", "reflect"]


@dataclass(frozen=True)
class VariationOptions:
    """The switches of VASIS Tables 4 and 5 (code option in brackets).

    Args:
        semantic_noise: Semantic noise on/off (``--noise_nc zero`` when off).
        noise_channels: ``all`` noise channels get their own per-class scale/shift, or ``one``
            scale/shift per class shared by them (``--noise_nc one``, Table 5 "one-channel").
        noise_mode: ``cat`` (``norm_cat``, paper default), ``plus`` (``norm_avg``: full-width
            layout branch, noise of width C, averaged) or ``rand`` (``random_cat``: plain noise
            without per-class tables).
        noise_distribution: ``uniform`` U[0, 1) (code) or ``normal`` N(0, 1) (paper text).
        position_code: ``PositionCodeKind`` (``--pos``; ``none`` is the code's ``no``).
        position_channels: 1x1 position convs output ``all`` layout channels or ``one``
            (``--pos_nc``).
        padding: Padding of the SPADE-MLP 3x3 convs, ``reflect`` in all VASIS runs.
    """

    semantic_noise: bool = True
    noise_channels: NoiseChannels = "all"
    noise_mode: NoiseCombine = "cat"
    noise_distribution: NoiseDistribution = "uniform"
    position_code: PositionCodeKind = "learn"
    position_channels: NoiseChannels = "all"
    padding: Padding = "reflect"

    @property
    def uses_offsets(self) -> bool:
        """Whether the norm input must carry CLADE-ICPE offsets (a relative position code)."""
        return "relative" in self.position_code


def split_channels(channels: int, options: VariationOptions) -> tuple[int, int, int]:
    """``(layout channels, noise channels, noise-table columns)`` of a norm of width C."""
    if not options.semantic_noise:
        return channels, 0, 0
    if options.noise_mode == "plus":
        return channels, channels, channels
    seg = channels // 2
    noise = channels - seg
    return seg, noise, (1 if options.noise_channels == "one" else noise)


class VariationAwareNorm(nn.Module):
    """VA-SPADE / VA-CLADE / VA-OASIS normalisation layer.

    Args:
        norm_channels: Channels C of the activation.
        num_classes: One-hot class channels (don't-care included).
        use_instance: The input carries an instance edge channel after the classes.
        height: Feature height of this layer (sizes the learnable/absolute position maps).
        width: Feature width of this layer.
        layout: ``spade`` (3x3 conv MLP on the label map) or ``clade`` (class tables; output
            ``x_hat * gamma + beta`` without "1 +", plus CLADE's instance feature channel).
        options: The VASIS switches.
        label_channels: Channels the SPADE MLP reads (defaults to classes + instance edge; OASIS
            passes its 3D noise channels too). Unused for ``clade``.
        hidden: Width of the SPADE MLP (VASIS: 128).
        param_free: Parameter-free norm, ``batch`` or ``instance``.
        shared_padding: Padding of the first SPADE-MLP conv (``mlp_shared``); None: as
            ``options.padding``. VA-OASIS ``models/norms.py`` zero-pads it while its gamma and
            beta convs reflect; VA-SPADE reflects all three.

    Shapes:
        ``forward(x (B, C, H, W), segmap (B, K, H0, W0)) -> (B, C [+1 for clade with
        instances], H, W)`` with ``segmap`` = [label channels, (2 offsets if relative)].
    """

    def __init__(
        self,
        norm_channels: int,
        num_classes: int,
        use_instance: bool,
        height: int,
        width: int,
        layout: Layout,
        options: VariationOptions,
        label_channels: int | None = None,
        hidden: int = 128,
        param_free: ParamFreeNorm = "batch",
        shared_padding: Padding | None = None,
    ) -> None:
        super().__init__()
        if options.noise_channels == "one" and options.noise_mode == "plus":
            raise ValueError("noise_channels='one' works with noise_mode 'cat' or 'rand' only")
        self.layout = layout
        self.num_classes = num_classes
        self.use_instance = use_instance
        self.plus = options.noise_mode == "plus"
        self.label_channels = label_channels or num_classes + int(use_instance)
        self.num_offsets = 2 if options.uses_offsets else 0
        seg_nc, noise_nc, table_nc = split_channels(norm_channels, options)
        self.param_free_norm = param_free_norm(param_free, norm_channels)
        if layout == "spade":
            pad = options.padding
            self.mlp_shared = nn.Sequential(
                nn.Conv2d(
                    self.label_channels,
                    hidden,
                    3,
                    padding=1,
                    padding_mode=shared_padding or pad,
                ),
                nn.ReLU(),
            )
            self.mlp_gamma = nn.Conv2d(hidden, seg_nc, 3, padding=1, padding_mode=pad)
            self.mlp_beta = nn.Conv2d(hidden, seg_nc, 3, padding=1, padding_mode=pad)
            noise_rows = self.label_channels  # VASIS: the SPADE variant's tables span semantic_nc
        else:
            self.class_affine = ClassAffine(num_classes, seg_nc)
            noise_rows = num_classes  # VASIS VariationAffineCLADE: label_nc_ rows
            if use_instance:
                self.inst_conv = nn.Conv2d(1, 1, 1)
        pos_out = 1 if options.position_channels == "one" else seg_nc
        self.position = PositionCode(options.position_code, pos_out, height, width)
        self.noise: SemanticNoise | None = None
        if noise_nc:
            mode = "rand" if options.noise_mode == "rand" else "affine"
            self.noise = SemanticNoise(
                noise_rows, table_nc, noise_nc, mode, options.noise_distribution
            )

    def forward(
        self, x: torch.Tensor, segmap: torch.Tensor, negative_slope: float | None = None
    ) -> torch.Tensor:
        """Normalise ``x`` and modulate it with layout, position and semantic-noise terms.

        ``negative_slope``: the leaky ReLU the block applies next (to the edge feature too),
        fused with the modulation (``modulation.modulate``); None returns the pre-activation.
        """
        segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        labels = segmap[:, : self.label_channels]
        offsets = segmap[:, self.label_channels : self.label_channels + self.num_offsets]
        _, edges, _ = split_norm_input(labels, self.num_classes, self.use_instance, 0)
        classes = labels[:, : self.num_classes].argmax(dim=1)
        if self.layout == "spade":
            actv = self.mlp_shared(labels)
            gamma, beta = self.mlp_gamma(actv), self.mlp_beta(actv)
        else:
            gamma, beta = self.class_affine(classes)
        # VASIS code order: position modulation of the layout part, then the noise.
        gamma, beta = self.position(gamma, beta, offsets if self.num_offsets else None)
        if self.noise is not None:
            gamma_noise, beta_noise = self.noise(classes, gamma.dtype)
            if self.plus:
                gamma, beta = (gamma + gamma_noise) / 2, (beta + beta_noise) / 2
            else:  # the noise channels follow the layout ones, modulated without a concatenation
                gamma, beta = (gamma, gamma_noise), (beta, beta_noise)
        one_plus = self.layout == "spade"  # CLADE: no "1 +"
        out = modulate(self.param_free_norm, x, gamma, beta, negative_slope, one_plus)
        if not one_plus and self.use_instance and edges is not None:
            out = torch.cat([out, activate(self.inst_conv(edges), negative_slope)], dim=1)
        return out
