"""SC-GAN's generator: the SVG and the SRG as one module (code ``SCGGenerator``)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from sislab.models.generators.scgan_srg import SemanticRenderGenerator
from sislab.models.generators.scgan_svg import SemanticVectorGenerator


class ScganGeneratorOutput(NamedTuple):
    """What one SC-GAN generator forward returns.

    Attributes:
        image: The synthesised image f_R, (B, 3, H, W) in [-1, 1]; the adversarial, feature
            matching and perceptual losses read it.
        svg_image: The SVG's image prediction f_V^out(S), (B, 3, H, W) in [-1, 1]; the semantic
            vector generation loss L_s (``svg_loss``) compares it with the real image.
        conv_vectors: Per SVG stage, the SCC vectors V (B, n_conv, h_t, w_t), coarse to fine.
        norm_vectors: Per SVG stage, the SCN vectors V (B, n_norm, h_t, w_t).
    """

    image: torch.Tensor
    svg_image: torch.Tensor
    conv_vectors: list[torch.Tensor]
    norm_vectors: list[torch.Tensor]


class ScganGenerator(nn.Module):
    """SVG (label -> semantic vectors + image prediction) feeding the SRG (vectors -> image).

    Args:
        svg: The semantic vector generator.
        srg: The semantic render generator; reads ``svg.num_stages`` stages.

    Shapes:
        ``forward(semantics (B, L, H, W), z (B, z_dim) | None) -> ScganGeneratorOutput``; z is
        used only when the SRG was built with ``use_vae`` (sampled from N(0, I) when None).
    """

    def __init__(self, svg: SemanticVectorGenerator, srg: SemanticRenderGenerator) -> None:
        super().__init__()
        if svg.num_stages != srg.num_stages:
            raise ValueError(f"SVG has {svg.num_stages} stages, the SRG reads {srg.num_stages}")
        self.svg = svg
        self.srg = srg

    def forward(
        self, semantics: torch.Tensor, z: torch.Tensor | None = None
    ) -> ScganGeneratorOutput:
        """Synthesise an image from ``semantics``."""
        vectors = self.svg(semantics)
        image = self.srg(semantics, vectors.conv_vectors, vectors.norm_vectors, z)
        return ScganGeneratorOutput(
            image, vectors.image, vectors.conv_vectors, vectors.norm_vectors
        )
