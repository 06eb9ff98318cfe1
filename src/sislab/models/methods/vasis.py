"""VA-SPADE and VA-CLADE (VASIS, seed paper 001): ``model:`` configs and the G and D builders.

SPADE's generator with every norm replaced by ``VariationAwareNorm`` (xml94/VASIS ``--norm_mode
spade_variation | clade_variation``); discriminator and losses are SPADE's (procedure "spade").
Every switch of VASIS Tables 4 and 5 is a field of ``VariationFields`` so a sweep can search it;
the defaults are the paper runs' options (``--pos learn --pos_nc all --mode_noise norm_cat
--noise_nc all --pad reflect``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sislab.models.discriminators.multiscale import MultiscaleDiscriminator
from sislab.models.generators.spade import ResolutionNormFactory, SpadeGenerator
from sislab.models.geometry import DatasetGeometry, UpsamplingMode
from sislab.models.init import init_weights
from sislab.models.methods import spade
from sislab.models.norms.intra_class_offsets import IntraClassOffsets
from sislab.models.norms.position_code import PositionCodeKind
from sislab.models.norms.semantic_noise import NoiseDistribution
from sislab.models.norms.vasis import (
    Layout,
    NoiseChannels,
    NoiseCombine,
    Padding,
    VariationAwareNorm,
    VariationOptions,
)
from sislab.spec.models import StrictModel


class VariationFields(StrictModel):
    """The VASIS switches (Tables 4 and 5), shared by VA-SPADE, VA-CLADE and VA-OASIS."""

    semantic_noise: bool = Field(
        True, description="Semantic noise: per-class learnable scale/shift of random noise."
    )
    noise_channels: NoiseChannels = Field(
        "all",
        description="all: every noise channel has its own per-class scale/shift; one: one "
        "scale/shift per class (Table 5 'one-channel').",
    )
    noise_mode: NoiseCombine = Field(
        "cat",
        description="cat: noise fills the second half of gamma/beta (paper default); plus: a "
        "full-width layout branch averaged with full-width noise; rand: plain noise, no "
        "per-class tables (Table 5).",
    )
    noise_distribution: NoiseDistribution = Field(
        "uniform",
        description="uniform: U[0,1) as the VASIS code that produced the published numbers; "
        "normal: N(0,1) as the paper's text says.",
    )
    position_code: PositionCodeKind = Field(
        "learn",
        description="none, learn (per-layer learnable maps, paper default), fix (absolute), "
        "relative (CLADE-ICPE offsets, computed online) or a '_'-joined combination.",
    )
    position_channels: NoiseChannels = Field(
        "all", description="The position 1x1 convs output all layout channels, or one."
    )
    padding: Padding = Field(
        "reflect",
        description="Padding of G's 3x3 convs (fc, residual convs, norm MLP, conv_img); the "
        "VASIS runs use reflect.",
    )

    @model_validator(mode="after")
    def _one_channel_needs_cat(self):
        if self.semantic_noise and self.noise_channels == "one" and self.noise_mode == "plus":
            raise ValueError("noise_channels 'one' works with noise_mode 'cat' or 'rand' only")
        return self

    def variation_options(self) -> VariationOptions:
        """The switches as the norm layer's options."""
        return VariationOptions(
            semantic_noise=self.semantic_noise,
            noise_channels=self.noise_channels,
            noise_mode=self.noise_mode,
            noise_distribution=self.noise_distribution,
            position_code=self.position_code,
            position_channels=self.position_channels,
            padding=self.padding,
        )


class VaSpadeConfig(VariationFields):
    """VA-SPADE: SPADE's generator with variation-aware SPADE layers, SPADE's discriminator."""

    method: Literal["va-spade"] = "va-spade"
    ngf: int = Field(64, gt=0, description="Generator base width (the paper's 64).")
    ndf: int = Field(64, gt=0, description="Discriminator base width.")
    num_upsampling_layers: UpsamplingMode | None = Field(
        None, description="normal, more or most; null: the dataset's default."
    )
    param_free_norm: Literal["batch", "instance"] = Field(
        "batch", description="Parameter-free norm inside the norm layers."
    )
    spade_hidden: int = Field(128, gt=0, description="Hidden width of the SPADE MLP (VASIS: 128).")
    num_d: int = Field(2, ge=1, description="Scales of the multi-scale discriminator.")
    n_layers_d: int = Field(4, ge=1, description="Layers per PatchGAN discriminator.")
    spectral_norm_g: bool = Field(True, description="Spectral norm on the G residual-block convs.")
    spectral_norm_d: bool = Field(True, description="Spectral norm on the D middle convs.")


class VaCladeConfig(VaSpadeConfig):
    """VA-CLADE: SPADE's generator with variation-aware CLADE layers, SPADE's discriminator."""

    method: Literal["va-clade"] = "va-clade"  # type: ignore[assignment]


def _layout(cfg: VaSpadeConfig) -> Layout:
    return "clade" if cfg.method == "va-clade" else "spade"


def _factory_at(cfg: VaSpadeConfig, geometry: DatasetGeometry) -> ResolutionNormFactory:
    options = cfg.variation_options()

    def at(height: int, width: int):
        def make(channels: int) -> VariationAwareNorm:
            return VariationAwareNorm(
                channels,
                geometry.num_classes,
                geometry.use_instance,
                height,
                width,
                layout=_layout(cfg),
                options=options,
                hidden=cfg.spade_hidden,
                param_free=cfg.param_free_norm,
            )

        return make

    return at


def build_generator(cfg: VaSpadeConfig, geometry: DatasetGeometry) -> SpadeGenerator:
    """VA-SPADE or VA-CLADE generator, initialised as SPADE's code (xavier-normal, gain 0.02).

    As in the VASIS code, the global init also re-initialises the zero-initialised position
    convs (SPADE's ``init_weights`` visits every conv).

    Args:
        cfg: The spec's ``model:`` section for ``va-spade`` or ``va-clade``.
        geometry: Label channels and output size of the dataset.

    Returns:
        ``SpadeGenerator`` whose ``forward(semantics)`` returns (B, 3, H, W) in [-1, 1]; semantic
        noise is resampled on every call.
    """
    is_clade = _layout(cfg) == "clade"
    generator = SpadeGenerator(
        semantic_nc=geometry.semantic_nc,
        height=geometry.height,
        width=geometry.width,
        ngf=cfg.ngf,
        upsampling=cfg.num_upsampling_layers or geometry.upsampling,
        use_spectral_norm=cfg.spectral_norm_g,
        norm_factory_at=_factory_at(cfg, geometry),
        norm_extra_channels=int(is_clade and geometry.use_instance),
        conv_padding=cfg.padding,
        norm_input=(
            IntraClassOffsets(geometry.num_classes) if "relative" in cfg.position_code else None
        ),
    )
    return init_weights(generator)


def build_discriminator(cfg: VaSpadeConfig, geometry: DatasetGeometry) -> MultiscaleDiscriminator:
    """SPADE's multi-scale PatchGAN (VASIS keeps the base method's D).

    Args:
        cfg: The spec's ``model:`` section for ``va-spade`` or ``va-clade``.
        geometry: Label channels of the dataset.

    Returns:
        ``MultiscaleDiscriminator`` whose ``forward(semantics, image)`` returns per-scale features.
    """
    base = spade.SpadeConfig(
        ndf=cfg.ndf, num_d=cfg.num_d, n_layers_d=cfg.n_layers_d, spectral_norm_d=cfg.spectral_norm_d
    )
    return spade.build_discriminator(base, geometry)


def build_encoder(cfg: VaSpadeConfig, geometry: DatasetGeometry) -> None:
    """VASIS uses no VAE encoder; always None."""
    del cfg, geometry
    return None
