"""The FPSE discriminator: output structure, semantic projection, parameter count."""

from __future__ import annotations

import torch

from sislab.models.discriminators.fpse import FPSEDiscriminator


def test_output_structure_follows_the_multiscale_convention() -> None:
    torch.manual_seed(0)
    discriminator = FPSEDiscriminator(semantic_nc=5, ndf=8)
    out = discriminator(torch.rand(2, 5, 64, 64), torch.randn(2, 3, 64, 64))
    shapes = [[tuple(t.shape) for t in level] for level in out]
    assert shapes == [
        [(2, 16, 16, 16), (2, 1, 16, 16)],
        [(2, 32, 8, 8), (2, 1, 8, 8)],
        [(2, 64, 4, 4), (2, 64, 2, 2), (2, 1, 4, 4)],
    ]
    assert sum(len(level) - 1 for level in out) == FPSEDiscriminator.NUM_FEATURES


def test_logits_depend_on_semantics_through_the_projection_term() -> None:
    torch.manual_seed(0)
    discriminator = FPSEDiscriminator(semantic_nc=3, ndf=8)
    image = torch.randn(1, 3, 64, 64)
    semantics = torch.zeros(1, 3, 64, 64)
    semantics[:, 0] = 1
    other = torch.zeros(1, 3, 64, 64)
    other[:, 2] = 1
    first, second = discriminator(semantics, image), discriminator(other, image)
    torch.testing.assert_close(first[0][0], second[0][0])  # features see the image only
    assert not torch.allclose(first[0][-1], second[0][-1])


def test_parameter_count_matches_the_code_arithmetic() -> None:
    semantic_nc, ndf = 151, 64
    encoder = 9 * (3 * ndf + ndf * 2 * ndf + 2 * ndf * 4 * ndf + 4 * ndf * 8 * ndf + (8 * ndf) ** 2)
    lateral = 4 * ndf * (2 * ndf + 4 * ndf + 8 * ndf + 8 * ndf)
    final = 3 * 9 * 4 * ndf * 2 * ndf
    heads = (2 * ndf + 1) + (2 * ndf * 2 * ndf + 2 * ndf) + (semantic_nc * 2 * ndf + 2 * ndf)
    discriminator = FPSEDiscriminator(semantic_nc, ndf)
    count = sum(p.numel() for p in discriminator.parameters())
    assert count == encoder + lateral + final + heads == 5_190_593
