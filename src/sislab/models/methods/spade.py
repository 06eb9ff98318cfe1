"""SPADE (Park et al., CVPR 2019): the ``model:`` config and the G, D and E builders."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sislab.models.discriminators.multiscale import MultiscaleDiscriminator
from sislab.models.encoders.conv import ConvEncoder
from sislab.models.generators.spade import SpadeGenerator
from sislab.models.geometry import DatasetGeometry, UpsamplingMode
from sislab.models.init import init_weights
from sislab.spec.models import StrictModel


class SpadeConfig(StrictModel):
    """SPADE's generator, discriminator and optional VAE encoder."""

    method: Literal["spade"] = "spade"
    ngf: int = Field(64, gt=0, description="Generator base width (the paper's 64).")
    ndf: int = Field(64, gt=0, description="Discriminator base width.")
    num_upsampling_layers: UpsamplingMode | None = Field(
        None,
        description="normal (5 upsamplings), more (6), most (7); null: the dataset's default "
        "(Cityscapes more, others normal).",
    )
    use_vae: bool = Field(False, description="Image encoder + KL loss for multi-modal synthesis.")
    z_dim: int = Field(256, gt=0, description="Latent size of the VAE encoder.")
    param_free_norm: Literal["batch", "instance"] = Field(
        "batch",
        description="Parameter-free norm inside SPADE (batch becomes SyncBatchNorm with "
        "train.sync_bn).",
    )
    spade_hidden: int = Field(128, gt=0, description="Hidden width of SPADE's MLP (paper: 128).")
    spade_kernel: Literal[1, 3, 5] = Field(3, description="Kernel size of SPADE's MLP convs.")
    num_d: int = Field(2, ge=1, description="Scales of the multi-scale discriminator.")
    n_layers_d: int = Field(4, ge=1, description="Layers per PatchGAN discriminator.")
    spectral_norm_g: bool = Field(True, description="Spectral norm on the G residual-block convs.")
    spectral_norm_d: bool = Field(True, description="Spectral norm on the D middle convs.")


def _upsampling(cfg: SpadeConfig, geometry: DatasetGeometry) -> UpsamplingMode:
    return cfg.num_upsampling_layers or geometry.upsampling


def build_generator(cfg: SpadeConfig, geometry: DatasetGeometry) -> SpadeGenerator:
    """SPADE generator for a dataset, initialised as SPADE's code (xavier-normal, gain 0.02).

    Args:
        cfg: The spec's ``model:`` section for ``spade``.
        geometry: Label channels and output size of the dataset.

    Returns:
        ``SpadeGenerator`` whose ``forward(semantics, z=None)`` returns (B, 3, H, W) in [-1, 1].
    """
    generator = SpadeGenerator(
        semantic_nc=geometry.semantic_nc,
        height=geometry.height,
        width=geometry.width,
        ngf=cfg.ngf,
        upsampling=_upsampling(cfg, geometry),
        use_vae=cfg.use_vae,
        z_dim=cfg.z_dim,
        use_spectral_norm=cfg.spectral_norm_g,
        spade_hidden=cfg.spade_hidden,
        spade_kernel=cfg.spade_kernel,
        param_free=cfg.param_free_norm,
    )
    return init_weights(generator)


def build_discriminator(cfg: SpadeConfig, geometry: DatasetGeometry) -> MultiscaleDiscriminator:
    """SPADE's multi-scale PatchGAN for a dataset, initialised as SPADE's code.

    Args:
        cfg: The spec's ``model:`` section for ``spade``.
        geometry: Label channels of the dataset (the D sees semantics + RGB).

    Returns:
        ``MultiscaleDiscriminator`` whose ``forward(semantics, image)`` returns per-scale features.
    """
    discriminator = MultiscaleDiscriminator(
        semantic_nc=geometry.semantic_nc,
        ndf=cfg.ndf,
        num_d=cfg.num_d,
        n_layers=cfg.n_layers_d,
        use_spectral_norm=cfg.spectral_norm_d,
    )
    return init_weights(discriminator)


def build_encoder(cfg: SpadeConfig, geometry: DatasetGeometry) -> ConvEncoder | None:
    """SPADE's image encoder when ``cfg.use_vae``, else None.

    Args:
        cfg: The spec's ``model:`` section for ``spade``.
        geometry: Output size of the dataset (SPADE's crop_size is the width).

    Returns:
        ``ConvEncoder`` (``forward(image) -> (mu, logvar)``) or None.
    """
    if not cfg.use_vae:
        return None
    # SPADE code: the encoder's width is ngf and its conv stack uses norm_E='spectralinstance'.
    encoder = ConvEncoder(crop_size=geometry.width, ndf=cfg.ngf, z_dim=cfg.z_dim)
    return init_weights(encoder)
