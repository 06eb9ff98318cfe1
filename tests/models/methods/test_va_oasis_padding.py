"""VA-OASIS's paddings, as xml94/VASIS ``VA-OASIS`` builds them (found by the lock-step check).

VA-OASIS reflects the padding of G's first (``fc``) and last (``conv_img``) convs and of the
gamma/beta convs of its norms, but keeps zero padding in the norms' shared conv (``mlp_shared``);
VA-SPADE reflects all three MLP convs; OASIS zero-pads everything. A constant input shows the
difference: a reflect-padded conv maps it to a constant map, a zero-padded one does not (its
border pixels see zeros).
"""

from __future__ import annotations

import torch

from sislab.models.geometry import DatasetGeometry
from sislab.models.methods.oasis import OasisConfig, VaOasisConfig, build_generator
from sislab.models.methods.vasis import VaSpadeConfig
from sislab.models.methods.vasis import build_generator as build_vasis_generator
from sislab.models.norms.vasis import VariationAwareNorm

GEOMETRY = DatasetGeometry(num_classes=4, use_instance=False, height=128, width=128)


def _is_constant(conv: torch.nn.Conv2d) -> bool:
    with torch.no_grad():
        out = conv(torch.ones(1, conv.in_channels, 8, 8))
    return bool(torch.allclose(out, out[:, :, :1, :1].expand_as(out), atol=1e-6))


def _norms(generator) -> list[VariationAwareNorm]:
    return [m for m in generator.modules() if isinstance(m, VariationAwareNorm)]


def test_va_oasis_reflects_fc_and_conv_img_but_oasis_does_not():
    va = build_generator(VaOasisConfig(ngf=2, spectral_norm_g=False), GEOMETRY)
    base = build_generator(OasisConfig(ngf=2, z_dim=4, spectral_norm_g=False), GEOMETRY)
    assert _is_constant(va.fc) and _is_constant(va.conv_img)
    assert not _is_constant(base.fc) and not _is_constant(base.conv_img)


def test_va_oasis_norms_zero_pad_mlp_shared_and_reflect_gamma_beta():
    norms = _norms(build_generator(VaOasisConfig(ngf=2, spectral_norm_g=False), GEOMETRY))
    assert len(norms) == 16  # 6 blocks x 2 norms + 4 learned shortcuts
    for norm in norms:
        assert not _is_constant(norm.mlp_shared[0])
        assert _is_constant(norm.mlp_gamma) and _is_constant(norm.mlp_beta)


def test_va_spade_norms_reflect_all_mlp_convs():
    geometry = DatasetGeometry(num_classes=4, use_instance=False, height=64, width=64)
    norms = _norms(build_vasis_generator(VaSpadeConfig(ngf=4, spectral_norm_g=False), geometry))
    assert norms
    for norm in norms:
        assert _is_constant(norm.mlp_shared[0])
        assert _is_constant(norm.mlp_gamma) and _is_constant(norm.mlp_beta)
