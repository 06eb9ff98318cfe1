import pytest
import torch

from sislab.models.norms.spade import SPADE


@pytest.mark.parametrize("param_free", ["batch", "instance"])
def test_shape_and_segmap_resize(param_free):
    norm = SPADE(16, 5, hidden=8, param_free=param_free)
    out = norm(torch.randn(2, 16, 8, 12), torch.rand(2, 5, 32, 48))
    assert out.shape == (2, 16, 8, 12)


def test_zero_gamma_beta_is_the_param_free_norm():
    norm = SPADE(4, 3, hidden=8, param_free="instance")
    for conv in (norm.mlp_gamma, norm.mlp_beta):
        torch.nn.init.zeros_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
    x = torch.randn(2, 4, 6, 6)
    expected = torch.nn.functional.instance_norm(x)
    torch.testing.assert_close(norm(x, torch.rand(2, 3, 6, 6)), expected)


def test_modulation_is_x_hat_times_one_plus_gamma_plus_beta():
    norm = SPADE(2, 1, hidden=1, kernel_size=1, param_free="instance")
    with torch.no_grad():
        norm.mlp_shared[0].weight.fill_(1.0)
        norm.mlp_shared[0].bias.zero_()
        norm.mlp_gamma.weight.fill_(2.0)
        norm.mlp_gamma.bias.zero_()
        norm.mlp_beta.weight.fill_(3.0)
        norm.mlp_beta.bias.zero_()
    x = torch.randn(1, 2, 4, 4)
    seg = torch.zeros(1, 1, 4, 4)
    seg[..., :2] = 1.0  # gamma = 2, beta = 3 on the left half, 0 elsewhere
    x_hat = torch.nn.functional.instance_norm(x)
    expected = torch.where(seg.bool(), x_hat * 3 + 3, x_hat)
    torch.testing.assert_close(norm(x, seg), expected)


def test_parameter_count_matches_spade_formula():
    norm = SPADE(1024, 36)
    shared = 36 * 128 * 9 + 128
    gamma_beta = 2 * (128 * 1024 * 9 + 1024)
    assert sum(p.numel() for p in norm.parameters()) == shared + gamma_beta
    assert not any(p.requires_grad for p in norm.param_free_norm.parameters())
