"""VA-OASIS's paddings, as xml94/VASIS ``VA-OASIS`` builds them (found by the lock-step check).

VA-OASIS reflects the padding of G's first (``fc``) and last (``conv_img``) convs; OASIS
zero-pads them. A constant input shows the difference: a reflect-padded conv maps it to a
constant map, a zero-padded one does not (its border pixels see zeros).
"""

from __future__ import annotations

import torch

from sislab.models.geometry import DatasetGeometry
from sislab.models.methods.oasis import OasisConfig, VaOasisConfig, build_generator

GEOMETRY = DatasetGeometry(num_classes=4, use_instance=False, height=128, width=128)


def _is_constant(conv: torch.nn.Conv2d) -> bool:
    with torch.no_grad():
        out = conv(torch.ones(1, conv.in_channels, 8, 8))
    return bool(torch.allclose(out, out[:, :, :1, :1].expand_as(out), atol=1e-6))


def test_va_oasis_reflects_fc_and_conv_img_but_oasis_does_not():
    va = build_generator(VaOasisConfig(ngf=2, spectral_norm_g=False), GEOMETRY)
    base = build_generator(OasisConfig(ngf=2, z_dim=4, spectral_norm_g=False), GEOMETRY)
    assert _is_constant(va.fc) and _is_constant(va.conv_img)
    assert not _is_constant(base.fc) and not _is_constant(base.conv_img)
