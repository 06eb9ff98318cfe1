import pytest
import torch
import torch.nn.functional as F

from sislab.models.norms.clade import class_lookup
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


def _formula(norm: VariationAwareNorm, x: torch.Tensor, seg: torch.Tensor, slope: float):
    """VASIS's modulation written out: convs for the position code, one lookup per table, the
    layout and noise halves concatenated, then ``norm(x) * (1 + gamma) + beta`` (SPADE) or
    ``norm(x) * gamma + beta`` (CLADE), edge channel last."""
    seg = F.interpolate(seg, size=x.shape[2:], mode="nearest")
    labels = seg[:, : norm.label_channels]
    classes = labels[:, : norm.num_classes].argmax(1)
    if norm.layout == "spade":
        actv = norm.mlp_shared(labels)
        gamma, beta = norm.mlp_gamma(actv), norm.mlp_beta(actv)
    else:
        gamma, beta = (
            class_lookup(norm.class_affine.weight, classes),
            class_lookup(norm.class_affine.bias, classes),
        )
    pos = norm.position
    gamma = gamma * (1 + pos.conv_pos_gamma(pos.gamma_pos_learn[None]))
    beta = beta * (1 + pos.conv_pos_beta(pos.beta_pos_learn[None]))
    noise = norm.noise
    n1, n2 = noise.sample(classes, x.dtype), noise.sample(classes, x.dtype)
    gamma_noise = n1 * class_lookup(noise.gamma_noise_gamma, classes) + class_lookup(
        noise.gamma_noise_beta, classes
    )
    beta_noise = n2 * class_lookup(noise.beta_noise_gamma, classes) + class_lookup(
        noise.beta_noise_beta, classes
    )
    gamma, beta = torch.cat([gamma, gamma_noise], 1), torch.cat([beta, beta_noise], 1)
    scale = 1 + gamma if norm.layout == "spade" else gamma
    out = F.leaky_relu(norm.param_free_norm(x) * scale + beta, slope)
    if norm.layout == "clade":
        edges = labels[:, norm.num_classes :]
        out = torch.cat([out, F.leaky_relu(norm.inst_conv(edges), slope)], 1)
    return out


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("noise_channels", ["all", "one"])
@pytest.mark.parametrize("layout", ["spade", "clade"])
def test_modulation_in_chunks_equals_the_concatenated_formula(
    layout, noise_channels, channels_last
):
    torch.manual_seed(0)
    options = VariationOptions(noise_channels=noise_channels)
    norm = VariationAwareNorm(8, 3, True, 8, 8, layout, options, hidden=4).double()
    with torch.no_grad():
        for p in norm.parameters():
            p.uniform_(-1, 1)  # the zero-initialised position convs and shifts too
    x = torch.randn(2, 8, 8, 8, dtype=torch.float64)
    seg = torch.cat([_seg().double().expand(2, -1, -1, -1), torch.rand(2, 1, 8, 8).double()], 1)
    if channels_last:
        norm = norm.to(memory_format=torch.channels_last)
        x, seg = (t.contiguous(memory_format=torch.channels_last) for t in (x, seg))
    results = []
    for path in (norm, lambda x_, seg_, slope: _formula(norm, x_, seg_, slope)):
        norm.zero_grad()
        x_ = x.clone().requires_grad_()
        torch.manual_seed(1)  # the same noise
        out = path(x_, seg, 0.2)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        results.append([out, x_.grad] + [p.grad.clone() for p in norm.parameters()])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
