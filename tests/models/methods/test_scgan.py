"""SC-GAN's config presets, builders and parameter counts against the official code's arithmetic."""

from __future__ import annotations

import itertools

import pytest
import torch
from pydantic import ValidationError

from sislab.errors import SpecError
from sislab.models.geometry import DatasetGeometry
from sislab.models.methods.scgan import (
    ScganConfig,
    build_discriminator,
    build_encoder,
    build_generator,
)

# label_nc + dontcare (+ instance): SC-GAN's dataset options; every official YAML sets
# no_instance: true. Cityscapes keeps SPADE's instance channel (35 + 1) and 'more'.
GEOMETRIES = {
    "ade20k": DatasetGeometry(151, False, 256, 256),
    "coco": DatasetGeometry(183, False, 256, 256),
    "celeba": DatasetGeometry(19, False, 512, 512),
    "cityscapes": DatasetGeometry(35, True, 256, 512, "more"),
}


def _conv(fin: int, fout: int, k: int = 3, bias: bool = True) -> int:
    return fin * fout * k * k + (fout if bias else 0)


def _official_counts(preset: str) -> dict[str, int]:
    """SVG, SRG, D, E parameter counts of the official code, from its layer list by hand."""
    geo, cfg = GEOMETRIES[preset], ScganConfig(preset=preset)
    L, stages = geo.semantic_nc, 6 if geo.upsampling == "normal" else 7
    # SVG: labelDec1..labelDec6/7 (conv3x3 with bias) and toRGB.
    w = [m * cfg.nrf for m in (16, 8, 4, 2, 1, 1, 1)][:stages]
    svg = _conv(L, w[0]) + _conv(w[0], w[0])
    svg += sum(_conv(w[s - 1] + L, w[s]) + _conv(w[s], w[s]) for s in range(1, stages))
    svg += _conv(cfg.nrf, cfg.nrf // 2) + _conv(cfg.nrf // 2, 3)
    # SRG: fc, SCResnetBlocks (SCC without bias, SCN tables, SPADE + conv3x3 shortcut), conv_img.
    n, n_norm, ngf = cfg.num_candidates, cfg.num_norm_candidates, cfg.ngf
    ups = 5 if geo.upsampling == "normal" else 6
    sh, sw = geo.height // 2**ups, geo.width // 2**ups
    if cfg.use_vae:
        srg = cfg.z_dim * 16 * cfg.nff * sh * sw + 16 * cfg.nff * sh * sw
    else:
        srg = _conv(L, 16 * cfg.nff)
    widths = [16 * cfg.nff] + [m * ngf for m in (16, 16, 16, 8, 4, 2, 1)]
    for fin, fout in itertools.pairwise(widths):
        mid = min(fin, fout)
        srg += n * (_conv(fin, mid, bias=False) + _conv(mid, fout, bias=False))
        srg += n_norm * 2 * (fin + mid)
        if fin != fout:
            srg += _conv(L, 128) + 2 * _conv(128, fin) + _conv(fin, fout)
    srg += _conv(ngf, 3)
    # D: FPSE (ADE20K, COCO, Cityscapes) or 2 x NLayer PatchGAN (CelebA).
    ndf = cfg.ndf
    if cfg.discriminator == "fpse":
        chans = [3, ndf, 2 * ndf, 4 * ndf, 8 * ndf, 8 * ndf]
        d = sum(_conv(a, b, bias=False) for a, b in itertools.pairwise(chans))
        d += sum(_conv(c, 4 * ndf, k=1, bias=False) for c in chans[2:])
        d += 3 * _conv(4 * ndf, 2 * ndf, bias=False)
        d += _conv(2 * ndf, 1, k=1) + _conv(2 * ndf, 2 * ndf, k=1) + _conv(L, 2 * ndf, k=1)
    else:
        single = _conv(L + 3, ndf, k=4) + _conv(ndf, 2 * ndf, k=4, bias=False)
        single += _conv(2 * ndf, 4 * ndf, k=4, bias=False)
        single += _conv(4 * ndf, 8 * ndf, k=4, bias=False) + _conv(8 * ndf, 1, k=4)
        d = 2 * single
    # E: ConvEncoder with nef = ngf, six stride-2 convs (crop >= 256), two linear heads.
    e = 0
    if cfg.use_vae:
        c = [3, ngf, 2 * ngf, 4 * ngf, 8 * ngf, 8 * ngf, 8 * ngf]
        e = sum(_conv(a, b, bias=False) for a, b in itertools.pairwise(c))
        e += 2 * (8 * ngf * 16 * cfg.z_dim + cfg.z_dim)
    return {"svg": svg, "srg": srg, "d": d, "e": e}


# What the official code gives (derived above; asserted against the hand arithmetic below too).
EXPECTED = {
    "ade20k": {"svg": 6_126_531, "srg": 54_728_131, "d": 5_190_593, "e": 0},
    "coco": {"svg": 3_928_755, "srg": 37_918_083, "d": 5_194_689, "e": 0},
    "celeba": {"svg": 4_910_019, "srg": 142_660_035, "d": 5_566_594, "e": 6_672_656},
    "cityscapes": {"svg": 5_095_555, "srg": 53_668_291, "d": 5_175_873, "e": 0},
}


def _count(module: torch.nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("preset", sorted(GEOMETRIES))
def test_preset_parameter_counts_match_the_official_architecture(preset: str) -> None:
    # Spectral norm adds buffers, no parameters; off, the full-size build is seconds, not minutes.
    no_sn = {"spectral_norm_g": False, "spectral_norm_svg": False, "spectral_norm_d": False}
    cfg, geo = ScganConfig(preset=preset, **no_sn), GEOMETRIES[preset]
    with torch.device("meta"):  # counting needs no memory
        generator = build_generator(cfg, geo)
        counts = {
            "svg": _count(generator.svg),
            "srg": _count(generator.srg),
            "d": _count(build_discriminator(cfg, geo)),
            "e": _count(build_encoder(cfg, geo)),
        }
    assert counts == _official_counts(preset) == EXPECTED[preset]


def test_presets_reproduce_the_official_yamls() -> None:
    coco = ScganConfig(preset="coco")
    assert (coco.ngf, coco.nff, coco.nrf, coco.num_candidates, coco.num_norm_candidates) == (
        32,
        24,
        24,
        2,
        3,
    )
    assert coco.temperature == 0.5 and coco.discriminator == "fpse"
    celeba = ScganConfig(preset="celeba")
    assert (celeba.ngf, celeba.num_norm_candidates, celeba.discriminator) == (48, 3, "multiscale")
    assert celeba.use_vae and celeba.svg_position_encoding and not celeba.spectral_norm_svg
    assert (celeba.svg_position_range, celeba.svg_loss_weight) == (4, 1.0)
    city = ScganConfig(preset="cityscapes")
    assert city.model_dump(exclude={"preset"}) == ScganConfig(preset="ade20k").model_dump(
        exclude={"preset"}
    )


def test_user_fields_win_over_the_preset() -> None:
    cfg = ScganConfig(preset="celeba", ngf=16, use_vae=False)
    assert (cfg.ngf, cfg.use_vae, cfg.nff) == (16, False, 32)


def test_unknown_fields_and_presets_are_rejected() -> None:
    with pytest.raises(ValidationError, match="num_candidate"):
        ScganConfig(num_candidate=3)
    with pytest.raises(ValidationError, match="preset"):
        ScganConfig(preset="cityscape")


def test_generator_contract_at_64() -> None:
    torch.manual_seed(0)
    geo = DatasetGeometry(5, True, 64, 64)
    cfg = ScganConfig(ngf=4, nff=4, nrf=4, ndf=8, num_norm_candidates=2)
    semantics = torch.zeros(2, 6, 64, 64)
    semantics[:, 1] = 1
    out = build_generator(cfg, geo)(semantics)
    assert out.image.shape == out.svg_image.shape == (2, 3, 64, 64)
    assert [v.shape[1] for v in out.conv_vectors] == [3] * 6
    assert [v.shape[1] for v in out.norm_vectors] == [2] * 6
    logits = build_discriminator(cfg, geo)(semantics, out.image)
    assert [level[-1].shape[-1] for level in logits] == [16, 8, 4]
    assert build_encoder(cfg, geo) is None


def test_most_upsampling_is_a_spec_error() -> None:
    cfg = ScganConfig(num_upsampling_layers=None)
    with pytest.raises(SpecError, match="most"):
        build_generator(cfg, DatasetGeometry(5, False, 128, 128, "most"))
