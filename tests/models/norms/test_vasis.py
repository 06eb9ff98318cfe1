import pytest
import torch

from sislab.models.norms.spade import SPADE
from sislab.models.norms.vasis import VariationAwareNorm, VariationOptions, split_channels


def _seg(n: int = 3) -> torch.Tensor:
    classes = torch.zeros(1, 8, 8, dtype=torch.long)
    classes[:, 4:] = 1
    return torch.nn.functional.one_hot(classes, n).permute(0, 3, 1, 2).float()


def test_channel_split_is_the_reduced_layout_width():
    assert split_channels(64, VariationOptions()) == (32, 32, 32)
    assert split_channels(64, VariationOptions(noise_channels="one")) == (32, 32, 1)
    assert split_channels(64, VariationOptions(noise_mode="plus")) == (64, 64, 64)
    assert split_channels(64, VariationOptions(semantic_noise=False)) == (64, 0, 0)


@pytest.mark.parametrize("layout", ["spade", "clade"])
@pytest.mark.parametrize("distribution", ["uniform", "normal"])
def test_resampled_noise_changes_output_inside_a_class(layout, distribution):
    torch.manual_seed(0)
    options = VariationOptions(noise_distribution=distribution)
    norm = VariationAwareNorm(8, 3, False, 8, 8, layout, options, hidden=4).eval()
    x, seg = torch.randn(1, 8, 8, 8), _seg()
    a, b = norm(x, seg), norm(x, seg)
    assert a.shape == (1, 8, 8, 8)
    assert not torch.allclose(a[:, 4:, :4, :4], b[:, 4:, :4, :4])  # noise half changes
    assert torch.equal(a[:, :4], b[:, :4])  # layout half does not


def test_plain_spade_is_deterministic_for_a_fixed_layout():
    norm = SPADE(8, 3, hidden=4).eval()
    x, seg = torch.randn(1, 8, 8, 8), _seg()
    assert torch.equal(norm(x, seg), norm(x, seg))


@pytest.mark.parametrize("code", ["fix", "learn", "relative", "fix_learn_relative"])
def test_position_codes_run_with_offsets(code):
    options = VariationOptions(position_code=code)
    norm = VariationAwareNorm(8, 3, True, 8, 8, "clade", options)
    seg = torch.cat([_seg(), torch.zeros(1, 1, 8, 8), torch.randn(1, 2, 8, 8)], 1)
    if "relative" not in code:
        seg = seg[:, :4]
    assert norm(torch.randn(1, 8, 8, 8), seg).shape == (1, 9, 8, 8)  # + CLADE edge channel
