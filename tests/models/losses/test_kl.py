import math

import torch

from sislab.models.losses.kl import kl_divergence


def test_zero_for_standard_normal():
    assert kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0.0


def test_sum_by_hand():
    mu = torch.tensor([[1.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)]])
    # -0.5 * [(1 + 0 - 1 - 1) + (1 + ln2 - 0 - 2)] = 0.5 * (2 - ln2)
    expected = 0.5 * (2 - math.log(2.0))
    torch.testing.assert_close(kl_divergence(mu, logvar), torch.tensor(expected))
    # a sum, not a mean: doubling the batch doubles the loss
    torch.testing.assert_close(
        kl_divergence(mu.repeat(2, 1), logvar.repeat(2, 1)), torch.tensor(2 * expected)
    )
