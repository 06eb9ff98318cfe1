"""OASIS (Sushko et al., ICLR 2021) and VA-OASIS (VASIS): ``model:`` configs and G/D builders.

Both train with the OASIS procedure (``sislab.trainers.procedures.oasis``): N+1-class
cross-entropy with class balancing, LabelMix, an EMA generator for sampling. OASIS's loaders use
no instance maps, so the generator reads only the one-hot classes unless ``use_instance`` is set;
the standard dataset presets then give OASIS's own label widths (Cityscapes 35, ADE20K 151,
COCO-Stuff 183 channels).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from sislab.models.discriminators.oasis_unet import OasisUnetDiscriminator
from sislab.models.generators.oasis import OasisGenerator
from sislab.models.generators.spade import ResolutionNormFactory
from sislab.models.geometry import DatasetGeometry
from sislab.models.init import init_weights
from sislab.models.methods.vasis import VariationFields
from sislab.models.norms.intra_class_offsets import IntraClassOffsets
from sislab.models.norms.vasis import VariationAwareNorm
from sislab.spec.models import StrictModel

OasisPreset = Literal["ade20k", "cityscapes", "coco-stuff"]

# OASIS config.py set_dataset_default_lm (VA-OASIS's config.py has the same): the dataset's
# LabelMix weight and EMA decay. Its Cityscapes lr_g 4e-4 is train.lr_g, outside model:.
# Every OASIS loader sets contain_dontcare_label (dataloaders/*Dataset.py), which zeroes that
# class's loss weights (models/losses.py:33,38): sislab's index of it is ignore_class.
OASIS_PRESETS: dict[str, dict[str, Any]] = {
    "ade20k": {"labelmix_weight": 10.0, "ema_decay": 0.9999, "ignore_class": 150},
    "cityscapes": {"labelmix_weight": 5.0, "ema_decay": 0.999, "ignore_class": 0},
    "coco-stuff": {"labelmix_weight": 10.0, "ema_decay": 0.9999, "ignore_class": 182},
}


class OasisFields(StrictModel):
    """Architecture and loss switches of OASIS (boschresearch/OASIS ``config.py``).

    A ``preset`` fills the fields the user did not set with the dataset's defaults of OASIS's
    config; ``auto`` is replaced by the dataset's preset where the spec's dataset is known
    (``sislab.models.presets.with_resolved_preset``), and builds with the defaults until then.
    """

    preset: Literal["auto"] | OasisPreset | None = Field(
        "auto",
        description="Dataset defaults of OASIS's config (labelmix_weight, ema_decay, and the "
        "don't-care class as ignore_class): ade20k (10, 0.9999, 150), cityscapes (5, 0.999, 0), "
        "coco-stuff (10, 0.9999, 182); auto: the dataset's (by its manifest name, else its "
        "class count), none for other datasets; null: no preset. Fields set explicitly win "
        "(`sislab validate` and `sislab run` print the preset in use).",
    )
    ngf: int = Field(64, gt=0, description="Generator base width (OASIS channels_G).")
    z_dim: int = Field(64, gt=0, description="Size of the 3D noise vector.")
    ndf: int = Field(
        64,
        gt=0,
        description="U-Net D width: 64 gives OASIS's channels 128-128-256-256-512-512; other "
        "values scale them.",
    )
    use_instance: bool = Field(
        False,
        description="Feed the instance-edge channel to G as SPADE does (OASIS's loaders have none).",
    )
    param_free_norm: Literal["batch", "instance"] = Field(
        "batch", description="Parameter-free norm inside the SPADE layers (OASIS: syncbatch)."
    )
    spade_hidden: int = Field(128, gt=0, description="Hidden width of the SPADE MLPs.")
    spectral_norm_g: bool = Field(True, description="Spectral norm on the G residual convs.")
    spectral_norm_d: bool = Field(True, description="Spectral norm on the D convs.")
    class_balancing: bool = Field(
        True, description="Class-balanced weights in the N+1 cross-entropy (OASIS default)."
    )
    ignore_class: int | None = Field(
        None,
        description="Class id whose pixels get weight 0 in the balanced loss (OASIS zeroes its "
        "don't-care class); null: none.",
    )
    labelmix_weight: float = Field(
        10.0,
        ge=0,
        description="LabelMix regulariser weight lambda_LM (OASIS: 10 for ADE20K/COCO-Stuff, 5 "
        "for Cityscapes); 0 switches it off.",
    )
    ema_decay: float | None = Field(
        0.9999,
        gt=0,
        lt=1,
        description="Decay of the EMA generator used for sampling (OASIS: 0.9999, Cityscapes "
        "0.999); null: no EMA, sample from G.",
    )
    use_vgg_loss: bool = Field(
        False,
        description="Add the VGG19 perceptual loss weighted by losses.perceptual (OASIS "
        "--add_vgg_loss; off by default).",
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        """Fill the fields the user left out with the preset's values."""
        if isinstance(data, dict) and data.get("preset") in OASIS_PRESETS:
            return OASIS_PRESETS[data["preset"]] | data
        return data


class OasisConfig(OasisFields):
    """OASIS: SPADE-block generator with 3D noise, U-Net segmentation discriminator."""

    method: Literal["oasis"] = "oasis"
    use_3d_noise: bool = Field(True, description="Concatenate 3D noise to the label map.")


class VaOasisConfig(OasisFields, VariationFields):
    """VA-OASIS: OASIS without 3D noise, with variation-aware SPADE layers (VASIS)."""

    method: Literal["va-oasis"] = "va-oasis"
    use_3d_noise: bool = Field(
        False, description="Keep OASIS's 3D noise (VA-OASIS removes it: --no_3dnoise)."
    )


def label_channels(cfg: OasisFields, geometry: DatasetGeometry) -> int:
    """Semantic channels the OASIS generator reads (classes, plus edges if ``use_instance``)."""
    return geometry.num_classes + int(cfg.use_instance and geometry.use_instance)


def _va_factory_at(cfg: VaOasisConfig, geometry: DatasetGeometry) -> ResolutionNormFactory:
    options = cfg.variation_options()
    use_instance = cfg.use_instance and geometry.use_instance
    cond_nc = label_channels(cfg, geometry) + (cfg.z_dim if cfg.use_3d_noise else 0)

    def at(height: int, width: int):
        def make(channels: int) -> VariationAwareNorm:
            return VariationAwareNorm(
                channels,
                geometry.num_classes,
                use_instance,
                height,
                width,
                layout="spade",
                options=options,
                label_channels=cond_nc,
                hidden=cfg.spade_hidden,
                param_free=cfg.param_free_norm,
                # VA-OASIS models/norms.py: mlp_shared keeps zero padding (only mlp_gamma/beta
                # reflect), unlike VA-SPADE's.
                shared_padding="zeros",
            )

        return make

    return at


def build_generator(cfg: OasisConfig | VaOasisConfig, geometry: DatasetGeometry) -> OasisGenerator:
    """OASIS or VA-OASIS generator, initialised as OASIS's ``init_networks`` (xavier, 0.02).

    Args:
        cfg: The spec's ``model:`` section for ``oasis`` or ``va-oasis``.
        geometry: Label channels and output size of the dataset.

    Returns:
        ``OasisGenerator``; ``forward(semantics, z=None)`` -> (B, 3, H, W) in [-1, 1].

    Raises:
        SpecError: The image size is not a multiple of 32.
    """
    is_va = isinstance(cfg, VaOasisConfig)
    relative = is_va and "relative" in cfg.position_code
    generator = OasisGenerator(
        label_channels(cfg, geometry),
        geometry.height,
        geometry.width,
        ngf=cfg.ngf,
        z_dim=cfg.z_dim,
        use_3d_noise=cfg.use_3d_noise,
        use_spectral_norm=cfg.spectral_norm_g,
        norm_factory_at=_va_factory_at(cfg, geometry) if is_va else None,
        spade_hidden=cfg.spade_hidden,
        param_free=cfg.param_free_norm,
        # VA-OASIS generator.py: unpadded residual convs followed by ReflectionPad2d(1).
        conv_padding="reflect_after" if is_va and cfg.padding == "reflect" else "zeros",
        norm_input=IntraClassOffsets(geometry.num_classes) if relative else None,
        # VA-OASIS generator.py: fc and conv_img are ReflectionPad2d(1) + unpadded conv.
        io_padding="reflect" if is_va and cfg.padding == "reflect" else "zeros",
    )
    return init_weights(generator)


def build_discriminator(
    cfg: OasisConfig | VaOasisConfig, geometry: DatasetGeometry
) -> OasisUnetDiscriminator:
    """OASIS's U-Net discriminator with ``num_classes + 1`` outputs.

    Args:
        cfg: The spec's ``model:`` section for ``oasis`` or ``va-oasis``.
        geometry: Number of classes of the dataset.

    Returns:
        ``OasisUnetDiscriminator``; ``forward(image)`` -> (B, num_classes + 1, H, W) logits.
    """
    return init_weights(OasisUnetDiscriminator(geometry.num_classes, cfg.spectral_norm_d, cfg.ndf))


def build_encoder(cfg: OasisConfig | VaOasisConfig, geometry: DatasetGeometry) -> None:
    """OASIS has no encoder; always None."""
    del cfg, geometry
    return None
