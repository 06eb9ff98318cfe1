import torch
from torch.nn.utils import parametrize

from sislab.models.encoders.conv import ConvEncoder, reparameterize


def test_sixth_layer_only_from_crop_256():
    assert len(ConvEncoder(256, ndf=8).layers) == 6
    assert len(ConvEncoder(128, ndf=8).layers) == 5


def test_mu_logvar_shapes_for_small_and_large_crops():
    for crop, size in ((64, (64, 64)), (256, (32, 64))):
        enc = ConvEncoder(crop, ndf=4, z_dim=7)
        mu, logvar = enc(torch.rand(2, 3, *size) * 2 - 1)
        assert mu.shape == (2, 7) and logvar.shape == (2, 7)
        assert enc.fc_mu.in_features == 8 * 4 * 4 * 4


def test_convs_have_spectral_norm_and_no_bias():
    enc = ConvEncoder(256, ndf=4)
    for layer in enc.layers:
        conv = layer[0]
        assert parametrize.is_parametrized(conv, "weight") and conv.bias is None
        assert isinstance(layer[1], torch.nn.InstanceNorm2d)


def test_reparameterize_statistics():
    torch.manual_seed(0)
    mu = torch.full((20000, 2), 3.0)
    logvar = torch.full((20000, 2), 2 * torch.log(torch.tensor(0.5)).item())
    z = reparameterize(mu, logvar)
    assert abs(z.mean().item() - 3.0) < 0.02
    assert abs(z.std().item() - 0.5) < 0.02
