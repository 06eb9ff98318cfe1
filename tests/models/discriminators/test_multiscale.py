import pytest
import torch
from torch.nn.utils import parametrize

from sislab.models.discriminators.multiscale import MultiscaleDiscriminator


@pytest.mark.parametrize(("num_d", "n_layers"), [(2, 4), (3, 3), (1, 2)])
def test_returns_num_d_lists_of_n_layers_plus_one(num_d, n_layers):
    d = MultiscaleDiscriminator(5, ndf=8, num_d=num_d, n_layers=n_layers)
    out = d(torch.rand(2, 5, 64, 64), torch.rand(2, 3, 64, 64))
    assert len(out) == num_d
    assert all(len(scale) == n_layers + 1 for scale in out)
    assert all(scale[-1].shape[1] == 1 for scale in out)
    # the second scale sees a 2x smaller input
    if num_d > 1:
        assert out[1][0].shape[-1] < out[0][0].shape[-1]


def test_spade_layer_shapes():
    d = MultiscaleDiscriminator(5, ndf=8)
    feats = d(torch.rand(1, 5, 64, 64), torch.rand(1, 3, 64, 64))[0]
    assert [f.shape[1] for f in feats] == [8, 16, 32, 64, 1]
    assert [f.shape[-1] for f in feats] == [33, 17, 9, 10, 11]


@pytest.mark.parametrize("use_sn", [True, False])
def test_spectral_norm_only_on_middle_convs(use_sn):
    d = MultiscaleDiscriminator(5, ndf=8, use_spectral_norm=use_sn)
    stages = d.discriminators[0].stages
    convs = [stage[0] for stage in stages]
    assert not parametrize.is_parametrized(convs[0], "weight") and convs[0].bias is not None
    assert not parametrize.is_parametrized(convs[-1], "weight") and convs[-1].bias is not None
    for conv in convs[1:-1]:
        assert parametrize.is_parametrized(conv, "weight") == use_sn
        assert conv.bias is None
    for stage in stages[1:-1]:
        assert isinstance(stage[1], torch.nn.InstanceNorm2d)
