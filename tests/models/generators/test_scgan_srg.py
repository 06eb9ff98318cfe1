"""SC-GAN's SRG and whole generator: every Table 3 operator set, the shortcut, the VAE input."""

from __future__ import annotations

from typing import get_args

import pytest
import torch
from torch import nn

from sislab.models.blocks.sc_resblock import ScResBlock, SrgOps
from sislab.models.convs.scc import SemanticConditionalConv2d
from sislab.models.convs.vector_concat import VectorConcatConv2d
from sislab.models.generators.scgan import ScganGenerator
from sislab.models.generators.scgan_srg import SemanticRenderGenerator
from sislab.models.generators.scgan_svg import SemanticVectorGenerator
from sislab.models.norms.scn import SemanticConditionalNorm
from sislab.models.norms.spade import SPADE

NUM_CLASSES = 6


def _generator(ops: SrgOps, upsampling: str = "normal", use_vae: bool = False) -> ScganGenerator:
    stages = 6 if upsampling == "normal" else 7
    svg = SemanticVectorGenerator(NUM_CLASSES, 4, stages, 3, 2, 0.05)
    srg = SemanticRenderGenerator(
        NUM_CLASSES, 64, 64, 4, 4, upsampling, ops, 3, 2, use_vae=use_vae, z_dim=8
    )
    return ScganGenerator(svg, srg)


def _semantics() -> torch.Tensor:
    labels = torch.randint(0, NUM_CLASSES, (2, 64, 64))
    return nn.functional.one_hot(labels, NUM_CLASSES).permute(0, 3, 1, 2).float()


@pytest.mark.parametrize("upsampling", ["normal", "more"])
@pytest.mark.parametrize("ops", get_args(SrgOps))
def test_output_shapes_for_every_operator_set(ops: SrgOps, upsampling: str) -> None:
    torch.manual_seed(0)
    out = _generator(ops, upsampling)(_semantics())
    assert out.image.shape == out.svg_image.shape == (2, 3, 64, 64)
    assert out.image.abs().max() <= 1.0  # hardtanh head
    assert len(out.conv_vectors) == (6 if upsampling == "normal" else 7)


@pytest.mark.parametrize("ops", get_args(SrgOps))
def test_operator_classes(ops: SrgOps) -> None:
    block = ScResBlock(16, 8, NUM_CLASSES, ops, 3, 4)
    conv_cls = SemanticConditionalConv2d if ops.startswith("scc") else VectorConcatConv2d
    assert isinstance(block.conv_0, conv_cls) and isinstance(block.conv_1, conv_cls)
    if ops.endswith("scn"):
        assert isinstance(block.norm_0, SemanticConditionalNorm)
    else:
        assert isinstance(block.norm_0.norm, nn.BatchNorm2d) and block.norm_0.norm.affine


def test_conv_baseline_costs_n_times_vector_channels_more_per_output_channel() -> None:
    def count(ops: SrgOps) -> int:
        return sum(p.numel() for p in ScResBlock(16, 8, NUM_CLASSES, ops, 3, 4).parameters())

    # conv_0: 16 -> 8, conv_1: 8 -> 8; n = 3 kernels per layer, each 3 more input channels.
    assert count("conv_scn") - count("scc_scn") == 3 * 3 * (8 + 8) * 9
    # BN has one (scale, shift) pair per channel, SCN n_norm = 4 of them.
    assert count("scc_scn") - count("scc_bn") == (4 - 1) * 2 * (16 + 8)


def test_learned_shortcut_is_spade_then_3x3_conv_with_bias() -> None:
    block = ScResBlock(16, 8, NUM_CLASSES, "scc_scn", 3, 4)
    assert isinstance(block.norm_s, SPADE)
    assert block.conv_s.kernel_size == (3, 3) and block.conv_s.bias is not None
    assert not hasattr(ScResBlock(8, 8, NUM_CLASSES, "scc_scn", 3, 4), "conv_s")


def test_vae_input_uses_z() -> None:
    torch.manual_seed(0)
    generator = _generator("scc_scn", use_vae=True).eval()
    semantics = _semantics()
    z = torch.randn(2, 8)
    first = generator(semantics, z).image
    torch.testing.assert_close(generator(semantics, z).image, first)
    assert not torch.allclose(generator(semantics, torch.randn(2, 8)).image, first)
    assert isinstance(generator.srg.fc, nn.Linear) and generator.srg.fc.out_features == 64 * 2 * 2


def test_most_upsampling_is_rejected() -> None:
    with pytest.raises(ValueError, match="'normal' or 'more'"):
        SemanticRenderGenerator(NUM_CLASSES, 128, 128, 4, 4, "most")
