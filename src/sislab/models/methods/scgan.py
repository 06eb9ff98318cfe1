"""SC-GAN (Wang et al., ICCV 2021): config with the official presets, and builders."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator
from torch import nn

from sislab.errors import SpecError
from sislab.models.blocks.sc_resblock import SrgOps
from sislab.models.discriminators.fpse import FPSEDiscriminator
from sislab.models.discriminators.multiscale import MultiscaleDiscriminator
from sislab.models.encoders.conv import ConvEncoder
from sislab.models.generators.scgan import ScganGenerator
from sislab.models.generators.scgan_srg import SemanticRenderGenerator
from sislab.models.generators.scgan_svg import Nonlinearity, SemanticVectorGenerator
from sislab.models.geometry import DatasetGeometry
from sislab.models.init import init_weights
from sislab.spec.models import StrictModel

ScganPreset = Literal["ade20k", "coco", "celeba", "cityscapes"]

# dvlab-research/SCGAN config/scgan_{ade20k,coco,celeba}.yml, field by field (ngf, nff, nrf, ndf,
# num_experts_conv/norm, temperature, weight_type, no_spectral_on_routing, position/pyr_pos,
# pyr_rng, netD, lambda_w_recon, use_vae). rw_loss is not in the YAMLs, so the code default 'l1'
# holds (their 'rw_vgg: true' key is read by nothing). No Cityscapes config is shipped; the
# paper's Cityscapes ablations (Tab. 3-6) are taken here with the ADE20K values, whose norm
# candidate count 4 matches Tab. 5 ("norm candidates fixed to 4").
_ADE20K: dict[str, Any] = {
    "ngf": 32,
    "nff": 32,
    "nrf": 32,
    "ndf": 64,
    "num_candidates": 3,
    "num_norm_candidates": 4,
    "temperature": 0.05,
    "nonlinearity": "softmax",
    "spectral_norm_svg": True,
    "svg_position_encoding": False,
    "svg_position_range": 5,
    "discriminator": "fpse",
    "svg_loss": "l1",
    "svg_loss_weight": 2.0,
    "use_vae": False,
}
SCGAN_PRESETS: dict[str, dict[str, Any]] = {
    "ade20k": _ADE20K,
    "coco": _ADE20K
    | {"nff": 24, "nrf": 24, "num_candidates": 2, "num_norm_candidates": 3, "temperature": 0.5},
    "celeba": _ADE20K
    | {
        "ngf": 48,
        "num_norm_candidates": 3,
        "spectral_norm_svg": False,
        "svg_position_encoding": True,
        "svg_position_range": 4,
        "discriminator": "multiscale",
        "svg_loss_weight": 1.0,
        "use_vae": True,
    },
    "cityscapes": _ADE20K,
}


class ScganConfig(StrictModel):
    """SC-GAN's SVG + SRG generator, FPSE or multi-scale discriminator, optional VAE encoder.

    Defaults are the paper's (n = 3 conv and norm candidates, tau = 0.05, softmax, SCC + SCN,
    L1 L_s with weight 2) with the ADE20K config's widths. A ``preset`` fills every field the user
    did not set with the official config's value; ``auto`` is replaced by the dataset's preset
    where the spec's dataset is known (``sislab.models.presets.with_resolved_preset``), and
    builds with the defaults until then.
    """

    method: Literal["scgan"] = "scgan"
    preset: Literal["auto"] | ScganPreset | None = Field(
        "auto",
        description="Official configuration to start from: ade20k, coco, celeba (the repository's "
        "YAMLs) or cityscapes (ADE20K's values); auto: the one made for the dataset (by its "
        "manifest name, else its class count), none for other datasets; null: no preset. Fields "
        "set explicitly win over the preset (`sislab validate` and `sislab run` print the preset "
        "in use).",
    )
    ngf: int = Field(32, gt=0, description="SRG block width unit (code ngf; blocks 16..1 x ngf).")
    nff: int = Field(32, gt=0, description="Width unit of the SRG input layer (16 nff channels).")
    nrf: int = Field(32, gt=0, description="SVG width unit (stages 16, 8, 4, 2, 1, 1 x nrf).")
    ndf: int = Field(64, gt=0, description="Discriminator base width.")
    num_candidates: int = Field(
        3, ge=1, description="Kernel candidates n per SCC (paper Tab. 5: 1, 2, 4, 8)."
    )
    num_norm_candidates: int = Field(
        3, ge=1, description="Scale/shift candidates per SCN (code num_experts_norm)."
    )
    temperature: float = Field(
        0.05,
        gt=0,
        description="tau in V = g(tau * v) (multiplies: larger is sharper, one-hot as tau -> "
        "infinity for softmax; paper 0.05).",
    )
    nonlinearity: Nonlinearity = Field(
        "softmax",
        description="g applied to the SVG vectors (paper Tab. 6: softmax, sigmoid, tanh, relu, "
        "none; hardtanh is the code's extra option).",
    )
    ops: SrgOps = Field(
        "scc_scn",
        description="SRG operators (paper Tab. 3): scc_scn (SC-GAN), scc_bn, conv_scn, conv_bn; "
        "conv_* use n plain kernels per layer over concat(features, V).",
    )
    svg_loss: Literal["l1", "l2", "vgg", "none"] = Field(
        "l1",
        description="Semantic vector generation loss L_s between the SVG image and the real "
        "image (paper Tab. 4); read by the trainer.",
    )
    svg_loss_weight: float = Field(
        2.0,
        ge=0,
        description="Weight of L_s (code lambda_w_recon: 2; CelebA 1); read by the trainer.",
    )
    use_vae: bool = Field(
        False, description="Image encoder + KL; the SRG starts from z instead of the label map."
    )
    z_dim: int = Field(256, gt=0, description="Latent size with use_vae.")
    discriminator: Literal["fpse", "multiscale"] = Field(
        "fpse", description="CC-FPSE's feature-pyramid D (scenes) or SPADE's multi-scale PatchGAN."
    )
    num_d: int = Field(2, ge=1, description="Scales of the multi-scale discriminator.")
    n_layers_d: int = Field(4, ge=1, description="Layers per PatchGAN of the multi-scale D.")
    num_upsampling_layers: Literal["normal", "more"] | None = Field(
        None,
        description="normal (5 upsamplings, 6 SVG stages) or more (6, 7 stages); null: the "
        "dataset's default. 'most' is unsupported (the official code fails on it).",
    )
    param_free_norm: Literal["batch", "instance"] = Field(
        "batch",
        description="Parameter-free norm in SCN, *_bn and the shortcut SPADEs (code: sync batch).",
    )
    spectral_norm_g: bool = Field(True, description="Spectral norm on the SRG blocks' convs.")
    spectral_norm_svg: bool = Field(
        True, description="Spectral norm on the SVG convs (code: not no_spectral_on_routing)."
    )
    spectral_norm_d: bool = Field(True, description="Spectral norm on the discriminator convs.")
    svg_position_encoding: bool = Field(
        False,
        description="CelebA trick (code position + pyr_pos): nearest label pyramid whose finest "
        "levels are multiplied by their 7x7 Gaussian blur.",
    )
    svg_position_range: int = Field(
        5, ge=1, description="Code pyr_rng: how many of the finest pyramid levels get the blur."
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        """Fill the fields the user left out with the preset's values."""
        if isinstance(data, dict) and data.get("preset") in SCGAN_PRESETS:
            return SCGAN_PRESETS[data["preset"]] | data
        return data


def _upsampling(cfg: ScganConfig, geometry: DatasetGeometry) -> str:
    upsampling = cfg.num_upsampling_layers or geometry.upsampling
    if upsampling not in ("normal", "more"):
        raise SpecError(
            f"SC-GAN does not support num_upsampling_layers {upsampling!r}",
            fix="set model.num_upsampling_layers to 'normal' or 'more'",
        )
    return upsampling


def build_generator(cfg: ScganConfig, geometry: DatasetGeometry) -> ScganGenerator:
    """SC-GAN's generator (SVG + SRG), initialised as the code (xavier-normal, gain 0.02).

    Args:
        cfg: The spec's ``model:`` section for ``scgan``.
        geometry: Label channels and output size of the dataset.

    Returns:
        ``ScganGenerator``; ``forward(semantics, z=None)`` returns ``ScganGeneratorOutput(image,
        svg_image, conv_vectors, norm_vectors)``, both images (B, 3, H, W) in [-1, 1].
    """
    upsampling = _upsampling(cfg, geometry)
    svg = SemanticVectorGenerator(
        semantic_nc=geometry.semantic_nc,
        nrf=cfg.nrf,
        num_stages=6 if upsampling == "normal" else 7,
        num_conv_candidates=cfg.num_candidates,
        num_norm_candidates=cfg.num_norm_candidates,
        temperature=cfg.temperature,
        nonlinearity=cfg.nonlinearity,
        use_spectral_norm=cfg.spectral_norm_svg,
        use_position_encoding=cfg.svg_position_encoding,
        position_range=cfg.svg_position_range,
    )
    srg = SemanticRenderGenerator(
        semantic_nc=geometry.semantic_nc,
        height=geometry.height,
        width=geometry.width,
        ngf=cfg.ngf,
        nff=cfg.nff,
        upsampling=upsampling,
        ops=cfg.ops,
        num_conv_candidates=cfg.num_candidates,
        num_norm_candidates=cfg.num_norm_candidates,
        use_spectral_norm=cfg.spectral_norm_g,
        param_free=cfg.param_free_norm,
        use_vae=cfg.use_vae,
        z_dim=cfg.z_dim,
    )
    return init_weights(ScganGenerator(svg, srg))


def build_discriminator(cfg: ScganConfig, geometry: DatasetGeometry) -> nn.Module:
    """FPSE or multi-scale discriminator, initialised as the code.

    Args:
        cfg: The spec's ``model:`` section for ``scgan``.
        geometry: Label channels of the dataset.

    Returns:
        A module with ``forward(semantics, image) -> list[list[Tensor]]`` (per level or scale:
        features, then the logit map last). See ``FPSEDiscriminator`` for its feature-matching
        normaliser.
    """
    if cfg.discriminator == "fpse":
        discriminator: nn.Module = FPSEDiscriminator(
            geometry.semantic_nc, cfg.ndf, use_spectral_norm=cfg.spectral_norm_d
        )
    else:
        discriminator = MultiscaleDiscriminator(
            semantic_nc=geometry.semantic_nc,
            ndf=cfg.ndf,
            num_d=cfg.num_d,
            n_layers=cfg.n_layers_d,
            use_spectral_norm=cfg.spectral_norm_d,
        )
    return init_weights(discriminator)


def build_encoder(cfg: ScganConfig, geometry: DatasetGeometry) -> ConvEncoder | None:
    """SPADE's image encoder when ``cfg.use_vae`` (the CelebA preset), else None.

    Args:
        cfg: The spec's ``model:`` section for ``scgan``.
        geometry: Output size (the code's crop_size is the width).

    Returns:
        ``ConvEncoder`` (``forward(image) -> (mu, logvar)``) or None.
    """
    if not cfg.use_vae:
        return None
    # SC-GAN code ConvEncoder: nef = ngf when nef <= 0 (default -1), norm_E 'spectralinstance'.
    encoder = ConvEncoder(crop_size=geometry.width, ndf=cfg.ngf, z_dim=cfg.z_dim)
    return init_weights(encoder)
