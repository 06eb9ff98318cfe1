import pytest
import torch
from torch.nn.utils import parametrize

from sislab.errors import SpecError
from sislab.models.generators.spade import SpadeGenerator, latent_size


@pytest.mark.parametrize(
    ("height", "width", "upsampling"),
    [(64, 64, "normal"), (32, 64, "normal"), (64, 64, "more"), (64, 128, "more")],
)
def test_output_shape_and_range(height, width, upsampling):
    torch.manual_seed(0)
    g = SpadeGenerator(5, height, width, ngf=4, upsampling=upsampling, spade_hidden=4)
    out = g(torch.rand(2, 5, height, width))
    assert out.shape == (2, 3, height, width)
    assert out.min() >= -1 and out.max() <= 1


def test_latent_size_follows_spade():
    assert latent_size(256, 512, "more") == (4, 8)
    assert latent_size(256, 256, "normal") == (8, 8)
    assert latent_size(512, 512, "most") == (4, 4)


def test_incompatible_size_is_a_spec_error():
    with pytest.raises(SpecError, match="multiples of 64"):
        latent_size(32, 64, "more")


def test_most_adds_up_4():
    g = SpadeGenerator(3, 128, 128, ngf=4, upsampling="most", spade_hidden=4)
    assert g.up_4.conv_1.out_channels == 2 and g.conv_img.in_channels == 2
    assert g(torch.rand(2, 3, 128, 128)).shape == (2, 3, 128, 128)


def test_vae_path_uses_z():
    torch.manual_seed(0)
    g = SpadeGenerator(4, 32, 32, ngf=4, use_vae=True, z_dim=16, spade_hidden=4).eval()
    assert isinstance(g.fc, torch.nn.Linear) and g.fc.out_features == 16 * 4 * 1 * 1
    seg = torch.rand(2, 4, 32, 32)
    z = torch.randn(2, 16)
    with torch.no_grad():
        a = g(seg, z)
        same_z = g(seg.flip(0), z.flip(0)).flip(0)  # per-sample: depends on its own z only
        sampled = g(seg)  # z ~ N(0, I) drawn inside
    torch.testing.assert_close(a, same_z)
    assert not torch.allclose(a, sampled)
    assert sampled.shape == (2, 3, 32, 32)


def test_z_without_vae_is_rejected():
    g = SpadeGenerator(4, 32, 32, ngf=8, spade_hidden=4)
    with pytest.raises(ValueError, match="use_vae"):
        g(torch.rand(1, 4, 32, 32), torch.randn(1, 256))


def test_spectral_norm_not_on_fc_or_conv_img():
    g = SpadeGenerator(4, 32, 32, ngf=8, spade_hidden=4)
    assert not parametrize.is_parametrized(g.fc, "weight")
    assert not parametrize.is_parametrized(g.conv_img, "weight")
    assert parametrize.is_parametrized(g.head_0.conv_0, "weight")
    assert parametrize.is_parametrized(g.up_0.conv_s, "weight")
    assert not hasattr(g.head_0, "conv_s") and hasattr(g.up_3, "conv_s")
