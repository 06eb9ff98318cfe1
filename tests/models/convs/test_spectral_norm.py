"""sislab's spectral norm: dividing a conv's output by sigma equals torch's ``conv(x, W / sigma)``
(forward, every gradient, the power iteration's buffers), and each path runs where it should."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm

from sislab.models.convs.spectral_norm import SpectralNorm, SpectralNormConv2d, spectral_norm

# (in, out, kernel, stride, padding, padding_mode, groups, bias, input size): each case names
# the path it must take, "output" where one image's output is smaller than the weight.
CASES = {
    "low-res 3x3, output": (32, 48, 3, 1, 1, "zeros", 1, True, 4, "output"),
    "strided 4x4 without bias, output": (16, 32, 4, 2, 2, "zeros", 1, False, 6, "output"),
    "reflect padding, output": (24, 24, 3, 1, 1, "reflect", 1, True, 5, "output"),
    "grouped (CG-Block), output": (32, 32, 3, 1, 1, "zeros", 4, True, 3, "output"),
    "high-res, weight": (4, 6, 3, 1, 1, "zeros", 1, True, 16, "weight"),
    "1x1 shortcut, weight": (8, 8, 1, 1, 0, "zeros", 1, False, 8, "weight"),
}


def _twins(case: tuple) -> tuple[nn.Conv2d, nn.Conv2d, torch.Tensor]:
    cin, cout, k, stride, pad, mode, groups, bias, size, _ = case
    torch.manual_seed(0)
    conv = nn.Conv2d(cin, cout, k, stride, pad, padding_mode=mode, groups=groups, bias=bias)
    conv = conv.double()
    reference = torch_spectral_norm(copy.deepcopy(conv))
    ours = spectral_norm(conv)
    ours.load_state_dict(reference.state_dict())  # same weights, same u and v
    x = torch.randn(3, cin, size, size + 1, dtype=torch.float64)
    return ours, reference, x


def _paths(module: nn.Module) -> list[str]:
    """Record, per call of the norm, whether it returned the weight and sigma apart (output
    path) or the divided weight."""
    seen: list[str] = []

    def hook(norm, args, output) -> None:
        del norm, args
        seen.append("output" if isinstance(output, tuple) else "weight")

    module.parametrizations["weight"][0].register_forward_hook(hook)
    return seen


@pytest.mark.parametrize("name", list(CASES))
def test_dividing_the_output_equals_dividing_the_weight(name: str) -> None:
    ours, reference, x = _twins(CASES[name])
    assert isinstance(ours, SpectralNormConv2d)
    assert type(ours.parametrizations["weight"][0]) is SpectralNorm
    paths = _paths(ours)
    for step in range(2):  # the second call starts from the first one's power iteration
        x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
        y_ours, y_ref = ours(x_ours), reference(x_ref)
        torch.testing.assert_close(y_ours, y_ref, rtol=1e-12, atol=1e-13)
        upstream = torch.randn_like(y_ref)
        y_ours.backward(upstream)
        y_ref.backward(upstream)
        torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-12, atol=1e-13)
        for (key, mine), theirs in zip(
            ours.named_parameters(), reference.parameters(), strict=True
        ):
            torch.testing.assert_close(
                mine.grad, theirs.grad, rtol=1e-10, atol=1e-12, msg=f"step {step}: {key}"
            )
        for key, value in reference.state_dict().items():  # u, v: the same iteration, exactly
            assert torch.equal(ours.state_dict()[key], value), key
    assert paths == [CASES[name][-1]] * 2


def test_eval_mode_takes_no_power_iteration() -> None:
    ours, reference, x = _twins(CASES["low-res 3x3, output"])
    ours.eval()
    reference.eval()
    before = {k: v.clone() for k, v in ours.state_dict().items()}
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-12, atol=1e-13)
    for key, value in ours.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_state_dict_is_torchs() -> None:
    ours, reference, _ = _twins(CASES["low-res 3x3, output"])
    assert list(ours.state_dict()) == list(reference.state_dict())
    linear = spectral_norm(nn.Linear(4, 3))  # other layers: torch's parametrization, sigma-capable
    assert not isinstance(linear, SpectralNormConv2d)
    assert type(linear.parametrizations["weight"][0]) is SpectralNorm


def test_the_batch_does_not_choose_the_path() -> None:
    """A batch split into micro-batches or over ranks takes the whole batch's path."""
    ours, _, x = _twins(CASES["low-res 3x3, output"])
    paths = _paths(ours)
    ours(x[:1])
    ours(torch.cat([x] * 40))  # 120 images: far more outputs than weights in all
    assert paths == ["output", "output"]


def test_calls_inside_parametrize_cached_share_one_power_iteration() -> None:
    # SPADE's G step runs D on the fake and (no_grad) on the real image inside cached(): one
    # sigma for both, as torch's cached weight, and as one batched call.
    ours, reference, x = _twins(CASES["low-res 3x3, output"])
    paths = _paths(ours)
    with parametrize.cached():
        y_ours = torch.cat([ours(x[:1]), ours(x[1:])])
        y_ref = torch.cat([reference(x[:1]), reference(x[1:])])
    torch.testing.assert_close(y_ours, y_ref, rtol=1e-12, atol=1e-13)
    assert paths == ["output"]
    for key, value in reference.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key
    with parametrize.cached():  # a weight already divided in this context stays divided
        ours.weight  # noqa: B018
        ours(x)
    assert paths == ["output", "weight"]


@pytest.mark.parametrize("name", ["low-res 3x3, output", "strided 4x4 without bias, output"])
def test_autocast_keeps_the_convs_output_dtype(name: str) -> None:
    ours, reference, x = _twins(CASES[name])
    ours, reference, x = ours.float(), reference.float(), x.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y_ours, y_ref = ours(x), reference(x)
    assert y_ours.dtype == y_ref.dtype == torch.bfloat16
    torch.testing.assert_close(y_ours.float(), y_ref.float(), rtol=2e-2, atol=2e-2)
