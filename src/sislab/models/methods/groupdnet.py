"""GroupDNet (Zhu et al., CVPR 2020): the ``model:`` config, its baselines and ablations, builders.

Table 4's configurations are ``preset``s; the paper's baselines (MulNet, GroupNet, GroupEnc,
GroupDec, VSPADE) are ``variant``s of the same code; Table 3's ablations are switches. The group
schedules are plain lists, so a sweep can search them (see ``sislab.search_spaces.schedules``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from sislab.errors import SpecError
from sislab.models.discriminators.multiscale import MultiscaleDiscriminator
from sislab.models.encoders.group import GroupEncoder
from sislab.models.generators.groupdnet import GroupDGenerator, num_stages
from sislab.models.generators.spade import latent_size
from sislab.models.geometry import DatasetGeometry, UpsamplingMode
from sislab.models.init import init_weights
from sislab.models.methods.groupdnet_layout import Layout, check_decoder, check_layout
from sislab.models.norms.cg_norm import CgMlpStyle
from sislab.spec.models import StrictModel

GroupDNetPreset = Literal["auto", "deepfashion", "cityscapes", "ade20k"]
GroupDNetVariant = Literal["groupdnet", "mulnet", "groupnet", "groupenc", "groupdec", "vspade"]


@dataclass(frozen=True)
class _Preset:
    ngf: int
    encoder_ndf: int
    decoder_groups: tuple[int, ...]
    cg_mlp_style: CgMlpStyle
    decoder_widths: tuple[int, ...] | None = None


# P-GDN Table 4 (decoder C, G) and SMIS generator.py; encoder ndf from SMIS encoder.py (the paper's
# Table 4 gives 64 per group for DeepFashion, i.e. 512: paper/code differ, the code is used).
PRESETS: dict[str, _Preset] = {
    "deepfashion": _Preset(160, 256, (8, 8, 4, 4, 2, 2, 1), "deepfashion"),
    "cityscapes": _Preset(280, 350, (35, 35, 20, 14, 10, 4, 1), "cityscapes"),
    # SMIS ADE20KGenerator: fc 151*16, G_middle_0 -> 32 ngf, up_0 keeps 16 ngf; its up_4
    # (G=1, the paper's 8th group number) is built but never called, so it is left out here.
    "ade20k": _Preset(
        64, 604, (151, 16, 16, 8, 4, 2, 1), "ade20k", (2416, 2416, 2048, 1024, 1024, 512, 256, 128)
    ),
}
# One-hot classes of the dataset each preset was made for (SMIS label_nc + don't-care): what
# ``preset: auto`` matches a dataset against.
PRESET_CLASSES: dict[str, int] = {"deepfashion": 8, "cityscapes": 35, "ade20k": 151}
# Table 1 baselines on DeepFashion: the paper balances their parameter counts but gives no widths;
# these decoder ngf values bring encoder + decoder within 1.5% of Table 1 (vspade: see docs).
BASELINE_NGF: dict[str, int] = {
    "mulnet": 200,
    "groupnet": 192,
    "groupenc": 64,
    "groupdec": 216,
    "vspade": 64,
}
# A regular (ungrouped) encoder uses SPADE's width (SPADE code: ndf = ngf = 64).
UNGROUPED_ENCODER_NDF = 64
# MulNet/GroupNet end in "several normal convolutional layers" (P-GDN Fig. 3); the count is ours.
FUSION_LAYERS = 2


class GroupDNetConfig(StrictModel):
    """GroupDNet's group encoder, CG-Block decoder and SPADE's multi-scale discriminator."""

    method: Literal["groupdnet"] = "groupdnet"
    preset: GroupDNetPreset = Field(
        "auto",
        description="Table 4 configuration (widths, group schedule, CG-Norm MLP layout): "
        "deepfashion (8 classes), cityscapes (35), ade20k (151); auto: the one made for the "
        "dataset's class count, else the closest one whose group numbers fit it (`sislab "
        "validate` and `sislab run` print the preset in use).",
    )
    variant: GroupDNetVariant = Field(
        "groupdnet",
        description="groupdnet, or a Table 1 baseline built from the same code: groupnet (all "
        "groups = classes + fusion convs), mulnet (groupnet whose per-class norms read the full "
        "label map), groupenc (group encoder, ungrouped decoder), groupdec (regular encoder, "
        "decoder groups = classes), vspade (neither grouped).",
    )
    ngf: int | None = Field(
        None,
        gt=0,
        description="Decoder base width (widths 16,16,16,16,8,4,2,1 x ngf); null: the preset's "
        "(deepfashion baselines: widths balancing Table 1's parameter counts).",
    )
    decoder_widths: list[int] | None = Field(
        None,
        description="Explicit decoder widths: fc output then each stage's output (8 numbers, 9 "
        "with most); null: from ngf (ade20k preset: its own list).",
    )
    decoder_groups: list[int] | None = Field(
        None,
        description="Group number of each decoder stage (head_0, G_middle_0, G_middle_1, up_0.."
        "up_3): the group-decrease schedule; null: the variant's (groupdnet: the preset's). Each "
        "must divide its stage's channels.",
    )
    encoder_ndf: int | None = Field(None, gt=0, description="Encoder base width; null: preset.")
    encoder_groups: list[int] | None = Field(
        None,
        description="Group number of each encoder layer plus the mu/logvar heads; null: classes "
        "everywhere (1 for groupdec and vspade).",
    )
    cg_mlp_style: CgMlpStyle | None = Field(
        None, description="CG-Norm label-MLP layout (SMIS data_mode); null: the preset's."
    )
    num_upsampling_layers: UpsamplingMode = Field(
        "more", description="normal (5 upsamplings), more (6; SMIS default), most (7)."
    )
    use_latent_map: bool = Field(
        True, description="Mean/variance maps; false: pooled vectors (Table 3 'w/o map')."
    )
    use_split: bool = Field(
        True, description="Encoder reads the class-split image (false: Table 3 'w/o split')."
    )
    use_crop: bool = Field(
        True, description="Crop each class to its box and resize it before encoding (SMIS code)."
    )
    norm: Literal["batch", "group"] = Field(
        "batch",
        description="Param-free norm in CG-Norm (and the encoder's instance norm): batch, or "
        "group with each layer's groups (Table 3 '->GroupNorm').",
    )
    use_sync_bn: bool = Field(
        True,
        description="Synchronise CG-Norm batch statistics across ranks with train.sync_bn "
        "(false: per-rank statistics, Table 3 'w/o SyncBN').",
    )
    spectral_norm_g: bool = Field(
        True, description="Spectral norm in the decoder and encoder (false: 'w/o SpecNorm')."
    )
    spectral_norm_d: bool = Field(True, description="Spectral norm on the D middle convs.")
    ndf: int = Field(64, gt=0, description="Discriminator base width.")
    num_d: int = Field(2, ge=1, description="Scales of the multi-scale discriminator.")
    n_layers_d: int = Field(4, ge=1, description="Layers per PatchGAN discriminator.")

    @model_validator(mode="after")
    def _schedule_fits_widths(self) -> GroupDNetConfig:
        if self.decoder_groups is None:
            return self
        # With preset auto the widths depend on the dataset: the schedule must fit one preset's
        # (the layout is checked again for the dataset when it is resolved).
        presets = list(PRESETS) if self.preset == "auto" else [self.preset]
        errors = []
        for name in presets:
            try:
                check_decoder(
                    _widths(self, name), self.decoder_groups, self.num_upsampling_layers, ValueError
                )
            except ValueError as exc:
                errors.append(exc)
        if len(errors) == len(presets):
            raise errors[0]
        return self


def resolved_preset(cfg: GroupDNetConfig, geometry: DatasetGeometry) -> str:
    """The preset a config uses on a dataset: ``cfg.preset``, or for ``auto`` the preset made
    for the dataset's class count, else the closest one (by class count) whose layout fits.

    Args:
        cfg: The spec's ``model:`` section.
        geometry: The dataset's label channels and resolution.

    Returns:
        A key of ``PRESETS``.
    """
    if cfg.preset != "auto":
        return cfg.preset
    by_distance = sorted(PRESETS, key=lambda p: abs(PRESET_CLASSES[p] - geometry.num_classes))
    for name in by_distance:
        try:
            _layout(cfg, name, geometry)
        except SpecError:
            continue
        return name
    return by_distance[0]  # none fits: its layout error names the offending stage


def _widths(cfg: GroupDNetConfig, preset_name: str) -> list[int]:
    preset = PRESETS[preset_name]
    if cfg.decoder_widths is not None:
        return list(cfg.decoder_widths)
    if cfg.ngf is None and preset.decoder_widths is not None:
        return list(preset.decoder_widths)
    ngf = cfg.ngf or preset.ngf
    if cfg.ngf is None and preset_name == "deepfashion":
        ngf = BASELINE_NGF.get(cfg.variant, ngf)
    # SPADE generator widths: fc/head 16 ngf ... up_3 1 ngf (up_4 ngf // 2 with 'most').
    widths = [m * ngf for m in (16, 16, 16, 16, 8, 4, 2, 1)]
    if cfg.num_upsampling_layers == "most":
        widths.append(ngf // 2)
    return widths


def resolve_layout(cfg: GroupDNetConfig, geometry: DatasetGeometry) -> Layout:
    """Concrete widths and group numbers of a config for a dataset, checked.

    Raises:
        SpecError: A group number does not divide its stage's channels (the message names the
            stage, the groups and the channels).
    """
    return _layout(cfg, resolved_preset(cfg, geometry), geometry)


def _layout(cfg: GroupDNetConfig, preset_name: str, geometry: DatasetGeometry) -> Layout:
    preset = PRESETS[preset_name]
    c = geometry.num_classes
    stages = num_stages(cfg.num_upsampling_layers)
    h, _w = latent_size(geometry.height, geometry.width, cfg.num_upsampling_layers)
    enc_layers = (geometry.height // h).bit_length() - 1
    default_decoder = {
        "groupdnet": list(preset.decoder_groups),
        "groupnet": [c] * stages,
        "mulnet": [c] * stages,
        "groupdec": [c] * stages,
        "groupenc": [1] * stages,
        "vspade": [1] * stages,
    }[cfg.variant]
    grouped_encoder = cfg.variant not in ("groupdec", "vspade")
    layout = Layout(
        decoder_widths=_widths(cfg, preset_name),
        decoder_groups=list(cfg.decoder_groups or default_decoder),
        encoder_ndf=cfg.encoder_ndf
        or (preset.encoder_ndf if grouped_encoder else UNGROUPED_ENCODER_NDF),
        encoder_groups=list(cfg.encoder_groups or [c if grouped_encoder else 1] * (enc_layers + 1)),
        use_split=cfg.use_split and grouped_encoder,
        cg_mlp_style=cfg.cg_mlp_style or preset.cg_mlp_style,
        fusion_layers=FUSION_LAYERS if cfg.variant in ("groupnet", "mulnet") else 0,
        label_input="full" if cfg.variant == "mulnet" else "split",
        upsampling=cfg.num_upsampling_layers,
    )
    check_layout(layout, geometry)
    return layout


def build_generator(cfg: GroupDNetConfig, geometry: DatasetGeometry) -> GroupDGenerator:
    """GroupDNet's decoder, initialised as SPADE's code (xavier-normal, gain 0.02).

    Returns:
        ``GroupDGenerator``: ``forward(semantics, z (B, C, 8, h, w) | None)``.
    """
    layout = resolve_layout(cfg, geometry)
    param_free = (
        cfg.norm if cfg.norm == "group" else ("batch" if cfg.use_sync_bn else "local_batch")
    )
    generator = GroupDGenerator(
        num_classes=geometry.num_classes,
        use_instance=geometry.use_instance,
        height=geometry.height,
        width=geometry.width,
        widths=layout.decoder_widths,
        groups=layout.decoder_groups,
        upsampling=layout.upsampling,
        cg_style=layout.cg_mlp_style,
        param_free=param_free,
        label_input=layout.label_input,
        use_spectral_norm=cfg.spectral_norm_g,
        fusion_layers=layout.fusion_layers,
        latent_is_map=cfg.use_latent_map,
    )
    return init_weights(generator)


def build_encoder(cfg: GroupDNetConfig, geometry: DatasetGeometry) -> GroupEncoder:
    """GroupDNet's encoder: ``forward(image, semantics) -> (mu, logvar)``, (B, C, 8, h, w)."""
    layout = resolve_layout(cfg, geometry)
    encoder = GroupEncoder(
        num_classes=geometry.num_classes,
        height=geometry.height,
        width=geometry.width,
        latent_hw=latent_size(geometry.height, geometry.width, layout.upsampling),
        ndf=layout.encoder_ndf,
        groups=layout.encoder_groups,
        use_split=layout.use_split,
        use_crop=cfg.use_crop,
        latent_is_map=cfg.use_latent_map,
        norm="group" if cfg.norm == "group" else "instance",
        use_spectral_norm=cfg.spectral_norm_g,
    )
    return init_weights(encoder)


def build_discriminator(cfg: GroupDNetConfig, geometry: DatasetGeometry) -> MultiscaleDiscriminator:
    """SPADE's multi-scale PatchGAN (same for all datasets, P-GDN supp. Fig. 7)."""
    discriminator = MultiscaleDiscriminator(
        semantic_nc=geometry.semantic_nc,
        ndf=cfg.ndf,
        num_d=cfg.num_d,
        n_layers=cfg.n_layers_d,
        use_spectral_norm=cfg.spectral_norm_d,
    )
    return init_weights(discriminator)
