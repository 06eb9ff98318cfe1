"""GroupDNet's resolved layout (widths and group numbers) and its divisibility checks."""

from __future__ import annotations

from dataclasses import dataclass

from sislab.errors import SpecError
from sislab.models.encoders.group import encoder_widths
from sislab.models.generators.groupdnet import LATENT_CHANNELS, block_names
from sislab.models.geometry import DatasetGeometry, UpsamplingMode
from sislab.models.norms.cg_norm import CgMlpStyle, LabelInput, cg_mlp_layout


@dataclass(frozen=True)
class Layout:
    """Concrete numbers of one GroupDNet configuration for one dataset.

    Args:
        decoder_widths: fc output, then each stage's output channels.
        decoder_groups: Group number of each decoder stage.
        encoder_ndf: Encoder base width.
        encoder_groups: Group number of each encoder layer, then of the mu/logvar heads.
        use_split: Whether the encoder reads the class-split image.
        cg_mlp_style: CG-Norm MLP layout.
        fusion_layers: Regular convs before conv_img.
        label_input: CG-Norm MLP label input (``split`` or ``full``).
        upsampling: Upsampling mode of the decoder.
    """

    decoder_widths: list[int]
    decoder_groups: list[int]
    encoder_ndf: int
    encoder_groups: list[int]
    use_split: bool
    cg_mlp_style: CgMlpStyle
    fusion_layers: int
    label_input: LabelInput
    upsampling: UpsamplingMode


def _require(ok: bool, message: str, error: type[Exception]) -> None:
    if ok:
        return
    if error is SpecError:
        raise SpecError(message, fix="pick group numbers that divide the channels named above")
    raise error(message)


def check_decoder(
    widths: list[int],
    groups: list[int],
    upsampling: UpsamplingMode,
    error: type[Exception] = SpecError,
) -> None:
    """Check a decoder schedule against its widths (lengths, every group divides its convs).

    Args:
        widths: fc output, then each stage's output channels.
        groups: One group number per stage.
        upsampling: Decides the stages (7, or 8 with ``most``).
        error: Exception to raise (``ValueError`` inside pydantic validators).
    """
    names = block_names(upsampling)
    _require(
        len(groups) == len(names),
        f"model.decoder_groups has {len(groups)} numbers; the decoder has {len(names)} stages "
        f"({', '.join(names)})",
        error,
    )
    _require(
        len(widths) == len(names) + 1,
        f"model.decoder_widths has {len(widths)} numbers; {len(names) + 1} are needed "
        "(fc output, then each stage's output)",
        error,
    )
    for i, (name, g) in enumerate(zip(names, groups, strict=True)):
        fin, fout = widths[i], widths[i + 1]
        channels = sorted({fin, fout, min(fin, fout)})
        bad = [ch for ch in channels if g < 1 or ch % g]
        _require(
            not bad,
            f"decoder stage {name} (#{i}): {g} groups do not divide its channels "
            f"{channels} (in {fin}, out {fout})",
            error,
        )


def check_layout(layout: Layout, geometry: DatasetGeometry) -> None:
    """Check every grouped conv of a layout for a dataset.

    Raises:
        SpecError: Names the stage or layer, the group number and the channels.
    """
    c = geometry.num_classes
    widths, groups = layout.decoder_widths, layout.decoder_groups
    check_decoder(widths, groups, layout.upsampling)
    fc_in = c * LATENT_CHANNELS
    _require(
        fc_in % groups[0] == 0 and widths[0] % groups[0] == 0,
        f"decoder fc: {groups[0]} groups (those of stage head_0) do not divide its channels "
        f"(in {fc_in} = 8 x {c} classes, out {widths[0]})",
        SpecError,
    )
    labels = 2 * c if geometry.use_instance else c
    for i, (name, g) in enumerate(zip(block_names(layout.upsampling), groups, strict=True)):
        hidden, shared, out = cg_mlp_layout(layout.cg_mlp_style, c, g)
        label_in = labels * (shared if layout.label_input == "full" else 1)
        norm_channels = sorted({widths[i], min(widths[i], widths[i + 1])})
        checks = [(label_in, shared), (hidden, shared), (hidden, out)]
        checks += [(ch, out) for ch in norm_channels]
        for channels, gr in checks:
            _require(
                channels % gr == 0,
                f"decoder stage {name} (#{i}): the CG-Norm MLP ({layout.cg_mlp_style} layout, "
                f"{labels} label channels, hidden {hidden}) has a conv with {gr} groups over "
                f"{channels} channels",
                SpecError,
            )
    enc_widths = encoder_widths(layout.encoder_ndf, len(layout.encoder_groups) - 1)
    fin = 3 * c if (layout.use_split or layout.encoder_groups[0] > 1) else 3
    for i, (fout, g) in enumerate(zip(enc_widths, layout.encoder_groups, strict=False)):
        _require(
            fin % g == 0 and fout % g == 0,
            f"encoder layer {i + 1}: {g} groups do not divide its channels (in {fin}, out {fout})",
            SpecError,
        )
        fin = fout
    g = layout.encoder_groups[-1]
    _require(
        fin % g == 0 and fc_in % g == 0,
        f"encoder mu/logvar heads: {g} groups do not divide their channels (in {fin}, out {fc_in})",
        SpecError,
    )
