import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from sislab.models.init import init_weights


def test_xavier_gain_and_zero_bias():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(64, 64, 3), nn.Linear(256, 128), nn.BatchNorm2d(8))
    net[0].bias.data.fill_(3.0)
    init_weights(net)
    conv, linear, bn = net
    fan_in, fan_out = 64 * 9, 64 * 9
    expected_std = 0.02 * (2.0 / (fan_in + fan_out)) ** 0.5
    assert abs(conv.weight.std().item() / expected_std - 1) < 0.05
    assert torch.all(conv.bias == 0) and torch.all(linear.bias == 0)
    assert abs(bn.weight.mean().item() - 1) < 0.02 and torch.all(bn.bias == 0)


def test_spectral_norm_original_weight_is_initialised():
    torch.manual_seed(0)
    conv = spectral_norm(nn.Conv2d(32, 32, 3))
    init_weights(conv)
    original = conv.parametrizations.weight.original
    expected_std = 0.02 * (2.0 / (32 * 9 * 2)) ** 0.5
    assert abs(original.std().item() / expected_std - 1) < 0.1
    assert torch.all(conv.bias == 0)
