"""SC-GAN's semantic vector generator (SVG, G_V): a CRN-style cascade from the label pyramid.

Follows ``SemanticVectorGenerator`` of dvlab-research/SCGAN (model/net/generator.py) and paper
Sec. 3.1: the label map is encoded coarse to fine; every stage's output is pooled over contiguous
channel groups into raw vectors for the SCC (``n_conv`` channels) and the SCN (``n_norm``) of the
matching SRG block, mapped by ``g(tau * v)`` (paper Eq. 2); a toRGB head on the last stage predicts
the image for the semantic vector generation loss L_s.
"""

from __future__ import annotations

import itertools
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from sislab.models.convs.spectral_norm import spectral_norm

Nonlinearity = Literal["softmax", "sigmoid", "tanh", "relu", "hardtanh", "none"]

# SC-GAN code labelDec1..7: stage widths in units of nrf (stage 7 only for 'more').
STAGE_WIDTHS = (16, 8, 4, 2, 1, 1, 1)
# SC-GAN CelebA config: ig_sz 7, ig_sigma 1.5, ig_iter 1, ig_relative false (IterativeGaussian).
POSITION_WINDOW = 7
POSITION_SIGMA = 1.5


def apply_nonlinearity(raw: torch.Tensor, nonlinearity: Nonlinearity, temperature: float):
    """Semantic vectors ``V = g(tau * v)`` from raw pooled vectors ``v`` of shape (B, n, H, W).

    The temperature multiplies for every ``g``, as in the code (``act_fn(w * t)``) and Eq. 2:
    softmax over the n channels; sigmoid, tanh, relu, hardtanh elementwise; ``none`` returns
    ``tau * v`` (the code's identity). A larger tau makes softmax sharper (one-hot as tau -> inf),
    a smaller one smoother (uniform as tau -> 0); the paper uses tau = 0.05.
    """
    x = raw * temperature
    if nonlinearity == "softmax":
        return torch.softmax(x, dim=1)
    if nonlinearity == "sigmoid":
        return torch.sigmoid(x)
    if nonlinearity == "tanh":
        return torch.tanh(x)
    if nonlinearity == "relu":
        return torch.relu(x)
    if nonlinearity == "hardtanh":
        return F.hardtanh(x)
    if nonlinearity == "none":
        return x
    raise ValueError(f"unknown nonlinearity {nonlinearity!r}")


def channel_group_bounds(channels: int, num_groups: int) -> list[tuple[int, int]]:
    """``(first, end)`` channel ranges of :class:`ChannelGroupPool`'s groups: group i takes
    channels ``floor(i C / n) .. ceil((i + 1) C / n) - 1`` (adaptive pooling's ranges)."""
    return [
        ((i * channels) // num_groups, -(-(i + 1) * channels // num_groups))
        for i in range(num_groups)
    ]


class ChannelGroupPool(nn.Module):
    """Average contiguous channel groups: (B, C, H, W) -> (B, n, H, W) for each count n.

    The code's ``enc2weight`` (adaptive average pooling over the channel axis), as one 1x1
    convolution with a fixed 0/1 group mask for all counts at once, divided by the group sizes:
    the same sums and divisions in another order, ~6x faster than ``adaptive_avg_pool3d``
    forward and backward on CPU (~1% of SC-GAN's step). Groups overlap when n does not divide
    C. The mask is a non-persistent buffer: it follows the module's device and stays out of
    state dicts.

    Args:
        channels: Input channels C.
        counts: The group counts n, one output per count.
    """

    def __init__(self, channels: int, *counts: int) -> None:
        super().__init__()
        self.counts = list(counts)
        bounds = [b for n in counts for b in channel_group_bounds(channels, n)]
        mask = torch.zeros(len(bounds), channels, 1, 1)
        for row, (first, end) in enumerate(bounds):
            mask[row, first:end] = 1.0
        sizes = torch.tensor([float(end - first) for first, end in bounds])
        self.register_buffer("mask", mask, persistent=False)
        self.register_buffer("sizes", sizes.view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The pooled maps, one per count."""
        sums = F.conv2d(x, self.mask.to(x.dtype))
        return list((sums / self.sizes.to(sums.dtype)).split(self.counts, dim=1))


class SvgOutput(NamedTuple):
    """What the SVG gives the SRG and the L_s loss.

    Attributes:
        conv_vectors: Per stage, coarse to fine, V for the SCCs, (B, n_conv, h_t, w_t), after g.
        norm_vectors: Per stage, V for the SCNs, (B, n_norm, h_t, w_t), after g.
        image: The SVG's image prediction f_V^out(S), (B, 3, H, W) in [-1, 1] (hardtanh).
    """

    conv_vectors: list[torch.Tensor]
    norm_vectors: list[torch.Tensor]
    image: torch.Tensor


def _conv3x3(fin: int, fout: int, use_spectral_norm: bool) -> nn.Module:
    conv = nn.Conv2d(fin, fout, 3, padding=1)
    return spectral_norm(conv) if use_spectral_norm else conv


class SemanticVectorGenerator(nn.Module):
    """SVG: label pyramid -> cascade of conv stages -> semantic vectors per stage and an image.

    Stage 1 at the latent grid: conv3x3(L -> 16 nrf), LReLU(0.2), conv3x3(16 nrf -> 16 nrf).
    Stage s > 1: nearest x2 up, concat the label map at that scale, LReLU, conv3x3(-> c_s), LReLU,
    conv3x3(c_s -> c_s) with c = 8, 4, 2, 1, 1 (, 1) x nrf. No normalisation layers. toRGB:
    conv3x3(nrf -> nrf // 2), LReLU, conv3x3(-> 3), hardtanh (never spectral-normalised).

    The label pyramid halves the full-resolution map repeatedly, bilinearly (code default). With
    ``use_position_encoding`` (code ``position`` + ``pyr_pos``, CelebA config) it halves with
    nearest and multiplies the full-resolution level and the levels ``k`` halvings down with
    ``k < position_range - 1`` (code: ``layers - i < pyr_rng``) by their own 7x7 Gaussian blur
    (sigma 1.5, unnormalised window), a soft distance-to-boundary encoding of each region.

    Args:
        semantic_nc: Channels L of the semantic map.
        nrf: Base width (code ``nrf``).
        num_stages: 6 for 5 upsamplings (``normal``), 7 for 6 (``more``).
        num_conv_candidates: n of the SCCs (code ``num_experts_conv``).
        num_norm_candidates: n of the SCNs (code ``num_experts_norm``).
        temperature: tau of ``g(tau * v)``.
        nonlinearity: g.
        use_spectral_norm: Spectral norm on the stage convs (code: not ``no_spectral_on_routing``).
        use_position_encoding: The CelebA Gaussian position trick described above.
        position_range: Code ``pyr_rng``.

    Shapes:
        ``forward(semantics (B, L, H, W)) -> SvgOutput`` with stage t at ``H / 2**(T - t)``.
    """

    def __init__(
        self,
        semantic_nc: int,
        nrf: int,
        num_stages: int,
        num_conv_candidates: int,
        num_norm_candidates: int,
        temperature: float,
        nonlinearity: Nonlinearity = "softmax",
        use_spectral_norm: bool = True,
        use_position_encoding: bool = False,
        position_range: int = 5,
    ) -> None:
        super().__init__()
        if not 2 <= num_stages <= len(STAGE_WIDTHS):
            raise ValueError(f"num_stages must be in 2..{len(STAGE_WIDTHS)}, got {num_stages}")
        self.num_stages = num_stages
        self.num_conv_candidates = num_conv_candidates
        self.num_norm_candidates = num_norm_candidates
        self.temperature = temperature
        self.nonlinearity = nonlinearity
        self.use_position_encoding = use_position_encoding
        self.position_range = position_range
        widths = [w * nrf for w in STAGE_WIDTHS[:num_stages]]
        stages = [
            nn.Sequential(
                _conv3x3(semantic_nc, widths[0], use_spectral_norm),
                nn.LeakyReLU(0.2, True),
                _conv3x3(widths[0], widths[0], use_spectral_norm),
            )
        ]
        for fin, fout in itertools.pairwise(widths):
            stages.append(
                nn.Sequential(
                    nn.LeakyReLU(0.2, True),
                    _conv3x3(fin + semantic_nc, fout, use_spectral_norm),
                    nn.LeakyReLU(0.2, True),
                    _conv3x3(fout, fout, use_spectral_norm),
                )
            )
        self.stages = nn.ModuleList(stages)
        self.pools = nn.ModuleList(
            ChannelGroupPool(width, num_conv_candidates, num_norm_candidates) for width in widths
        )
        self.to_rgb = nn.Sequential(
            nn.Conv2d(nrf, nrf // 2, 3, padding=1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(nrf // 2, 3, 3, padding=1),
            nn.Hardtanh(),
        )
        offsets = torch.arange(POSITION_WINDOW, dtype=torch.float32) - POSITION_WINDOW // 2
        gauss = torch.exp(-(offsets**2) / (2 * POSITION_SIGMA**2))
        self.register_buffer("position_window", torch.outer(gauss, gauss), persistent=False)

    def position_encode(self, label: torch.Tensor) -> torch.Tensor:
        """``blur(label) * label`` per channel (code ``IterativeGaussian``, one iteration)."""
        channels = label.shape[1]
        window = self.position_window.to(label.dtype).expand(channels, 1, -1, -1)
        blurred = F.conv2d(label, window, padding=POSITION_WINDOW // 2, groups=channels)
        return blurred * label

    def label_pyramid(self, semantics: torch.Tensor) -> list[torch.Tensor]:
        """The label map at every stage's resolution, coarsest first."""
        mode = "nearest" if self.use_position_encoding else "bilinear"
        levels = [semantics]
        for halvings in range(1, self.num_stages):
            level = F.interpolate(levels[-1], scale_factor=0.5, mode=mode)
            if self.use_position_encoding and halvings + 1 < self.position_range:
                level = self.position_encode(level)
            levels.append(level)
        if self.use_position_encoding:
            levels[0] = self.position_encode(semantics)
        return levels[::-1]

    def forward(self, semantics: torch.Tensor) -> SvgOutput:
        """Encode ``semantics`` into per-stage semantic vectors and an image prediction."""
        labels = self.label_pyramid(semantics)
        conv_vectors, norm_vectors = [], []
        x = None
        for stage, pool, label in zip(self.stages, self.pools, labels, strict=True):
            if x is not None:
                label = torch.cat([F.interpolate(x, scale_factor=2), label], dim=1)
            x = stage(label)
            conv_raw, norm_raw = pool(x)
            conv_vectors.append(apply_nonlinearity(conv_raw, self.nonlinearity, self.temperature))
            norm_vectors.append(apply_nonlinearity(norm_raw, self.nonlinearity, self.temperature))
        return SvgOutput(conv_vectors, norm_vectors, self.to_rgb(x))
