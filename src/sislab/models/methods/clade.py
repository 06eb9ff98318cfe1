"""CLADE and CLADE-ICPE (Tan et al., TPAMI 2021): the ``model:`` configs and the G and D builders.

The SPADE generator with every SPADE layer replaced by CLADE (tzt101/CLADE ``--norm_mode
clade``; ICPE: ``--add_dist``); discriminator, losses and optimiser are SPADE's (procedure
"spade"). ICPE's intra-class offsets are computed online from the label map
(``IntraClassOffsets``), not read from CLADE's precomputed ``*_distance.npy`` files.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sislab.models.blocks.spade_resblock import NormFactory
from sislab.models.discriminators.multiscale import MultiscaleDiscriminator
from sislab.models.generators.spade import SpadeGenerator
from sislab.models.geometry import DatasetGeometry, UpsamplingMode
from sislab.models.init import init_weights
from sislab.models.methods import spade
from sislab.models.norms.clade import CLADE
from sislab.models.norms.intra_class_offsets import IntraClassOffsets
from sislab.spec.models import StrictModel


class CladeConfig(StrictModel):
    """CLADE's generator (SPADE skeleton with class-adaptive norms) and SPADE's discriminator."""

    method: Literal["clade"] = "clade"
    ngf: int = Field(64, gt=0, description="Generator base width (the paper's 64).")
    ndf: int = Field(64, gt=0, description="Discriminator base width.")
    num_upsampling_layers: UpsamplingMode | None = Field(
        None,
        description="normal (5 upsamplings), more (6), most (7); null: the dataset's default "
        "(Cityscapes more, others normal).",
    )
    param_free_norm: Literal["batch", "instance"] = Field(
        "batch",
        description="Parameter-free norm inside CLADE (batch becomes SyncBatchNorm with "
        "train.sync_bn).",
    )
    num_d: int = Field(2, ge=1, description="Scales of the multi-scale discriminator.")
    n_layers_d: int = Field(4, ge=1, description="Layers per PatchGAN discriminator.")
    spectral_norm_g: bool = Field(True, description="Spectral norm on the G residual-block convs.")
    spectral_norm_d: bool = Field(True, description="Spectral norm on the D middle convs.")


class CladeIcpeConfig(CladeConfig):
    """CLADE with intra-class positional encoding (offsets from each component's centroid)."""

    method: Literal["clade-icpe"] = "clade-icpe"  # type: ignore[assignment]


def _clade_factory(cfg: CladeConfig, geometry: DatasetGeometry, use_offsets: bool) -> NormFactory:
    def make(channels: int) -> CLADE:
        return CLADE(
            channels,
            geometry.num_classes,
            geometry.use_instance,
            use_offsets=use_offsets,
            param_free=cfg.param_free_norm,
        )

    return make


def build_generator(cfg: CladeConfig, geometry: DatasetGeometry) -> SpadeGenerator:
    """CLADE (or CLADE-ICPE) generator, initialised as SPADE's code (xavier-normal, gain 0.02).

    Args:
        cfg: The spec's ``model:`` section for ``clade`` or ``clade-icpe``.
        geometry: Label channels and output size of the dataset.

    Returns:
        ``SpadeGenerator`` with CLADE norms; ``forward(semantics)`` -> (B, 3, H, W) in [-1, 1].
    """
    use_offsets = cfg.method == "clade-icpe"
    generator = SpadeGenerator(
        semantic_nc=geometry.semantic_nc,
        height=geometry.height,
        width=geometry.width,
        ngf=cfg.ngf,
        upsampling=cfg.num_upsampling_layers or geometry.upsampling,
        use_spectral_norm=cfg.spectral_norm_g,
        norm_factory=_clade_factory(cfg, geometry, use_offsets),
        # CLADE architecture.py: convs reading a norm output take +1 channel with instances.
        norm_extra_channels=int(geometry.use_instance),
        norm_input=IntraClassOffsets(geometry.num_classes) if use_offsets else None,
    )
    return init_weights(generator)


def build_discriminator(cfg: CladeConfig, geometry: DatasetGeometry) -> MultiscaleDiscriminator:
    """SPADE's multi-scale PatchGAN (CLADE keeps SPADE's D).

    Args:
        cfg: The spec's ``model:`` section for ``clade`` or ``clade-icpe``.
        geometry: Label channels of the dataset.

    Returns:
        ``MultiscaleDiscriminator`` whose ``forward(semantics, image)`` returns per-scale features.
    """
    return spade.build_discriminator(_as_spade(cfg), geometry)


def _as_spade(cfg: CladeConfig) -> spade.SpadeConfig:
    return spade.SpadeConfig(
        ndf=cfg.ndf,
        num_d=cfg.num_d,
        n_layers_d=cfg.n_layers_d,
        spectral_norm_d=cfg.spectral_norm_d,
    )


def build_encoder(cfg: CladeConfig, geometry: DatasetGeometry) -> None:
    """CLADE's comparisons use no VAE encoder; always None."""
    del cfg, geometry
    return None
