import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from sislab.models.blocks.spade_resblock import SpadeResBlock
from sislab.models.norms.spade import SPADE


@pytest.mark.parametrize(("fin", "fout"), [(16, 16), (16, 8), (8, 16)])
def test_output_shape(fin, fout):
    block = SpadeResBlock(fin, fout, 3, spade_hidden=8)
    out = block(torch.randn(2, fin, 8, 8), torch.rand(2, 3, 16, 16))
    assert out.shape == (2, fout, 8, 8)


def test_learned_shortcut_only_when_channels_change():
    same = SpadeResBlock(16, 16, 3, spade_hidden=8)
    diff = SpadeResBlock(16, 8, 3, spade_hidden=8)
    assert not same.learned_shortcut and not hasattr(same, "conv_s")
    assert not hasattr(same, "norm_s")
    assert diff.learned_shortcut and isinstance(diff.norm_s, SPADE)
    assert diff.conv_s.bias is None and diff.conv_s.kernel_size == (1, 1)
    assert diff.conv_0.out_channels == 8  # fmiddle = min(fin, fout)


def test_identity_shortcut_passes_input():
    block = SpadeResBlock(4, 4, 2, spade_hidden=4)
    x = torch.randn(1, 4, 4, 4)
    assert torch.equal(block.shortcut(x, torch.rand(1, 2, 4, 4)), x)


@pytest.mark.parametrize("use_sn", [True, False])
def test_spectral_norm_on_block_convs_only(use_sn):
    block = SpadeResBlock(16, 8, 3, use_spectral_norm=use_sn, spade_hidden=8)
    for conv in (block.conv_0, block.conv_1, block.conv_s):
        assert parametrize.is_parametrized(conv, "weight") == use_sn
    for module in block.modules():
        if isinstance(module, SPADE):
            for conv in (module.mlp_shared[0], module.mlp_gamma, module.mlp_beta):
                assert not parametrize.is_parametrized(conv, "weight")


class _Recording(nn.Module):
    def __init__(self, channels: int, log: list[int]):
        super().__init__()
        self.channels = channels
        log.append(channels)

    def forward(self, x, segmap, negative_slope=None):
        assert x.shape[1] == self.channels
        return x * 2 if negative_slope is None else F.leaky_relu(x * 2, negative_slope)


def test_norm_factory_is_used_for_every_norm():
    log: list[int] = []
    block = SpadeResBlock(8, 4, 3, norm_factory=lambda c: _Recording(c, log))
    assert sorted(log) == [4, 8, 8]
    assert block(torch.randn(1, 8, 4, 4), torch.rand(1, 3, 4, 4)).shape == (1, 4, 4, 4)
    assert not any(isinstance(m, SPADE) for m in block.modules())
