"""The fused modulation + leaky ReLU equals autograd's chain bit for bit and keeps fewer tensors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sislab.models.norms.cg_norm import LocalBatchNorm2d
from sislab.models.norms.modulation import modulate, stateless_norm

SHAPE = (2, 6, 5, 7)


def _norms() -> dict[str, nn.Module]:
    eval_bn = nn.BatchNorm2d(6, affine=False)
    eval_bn.running_mean.uniform_(-1, 1)
    eval_bn.running_var.uniform_(0.5, 2)
    return {
        "batch": nn.BatchNorm2d(6, affine=False),
        "batch-eval": eval_bn.eval(),
        "instance": nn.InstanceNorm2d(6, affine=False),
        "group": nn.GroupNorm(3, 6, affine=False),
        "local-batch": LocalBatchNorm2d(6),
    }


def _unfused(norm, x, gamma, beta, slope, one_plus):
    scale = 1 + gamma if one_plus else gamma
    out = norm(x) * scale + beta
    return out if slope is None else F.leaky_relu(out, slope)


def _run(path, norm, dtype, gamma_shape, one_plus, slope=0.2):
    torch.manual_seed(0)
    x = torch.randn(SHAPE, dtype=dtype, requires_grad=True)
    gamma = torch.randn(gamma_shape, dtype=dtype, requires_grad=True)
    beta = torch.randn(gamma_shape, dtype=dtype, requires_grad=True)
    out = path(norm, x, gamma, beta, slope, one_plus)
    (out * torch.randn_like(out)).sum().backward()
    return out, x.grad, gamma.grad, beta.grad


@pytest.mark.parametrize("slope", [0.2, None], ids=["leaky", "no-activation"])
@pytest.mark.parametrize("one_plus", [True, False])
@pytest.mark.parametrize("gamma_shape", [SHAPE, (2, 6, 1, 1)], ids=["per-pixel", "per-channel"])
@pytest.mark.parametrize("kind", list(_norms()))
def test_fused_path_is_bit_identical_to_autograds(kind, gamma_shape, one_plus, slope) -> None:
    assert stateless_norm(_norms()[kind]) is not None
    fused_norm, plain_norm = _norms()[kind], _norms()[kind]
    if kind == "batch-eval":
        plain_norm.load_state_dict(fused_norm.state_dict())
    fused = _run(modulate, fused_norm, torch.float32, gamma_shape, one_plus, slope)
    plain = _run(_unfused, plain_norm, torch.float32, gamma_shape, one_plus, slope)
    for name, a, b in zip(["out", "x", "gamma", "beta"], fused, plain, strict=True):
        assert torch.equal(a, b), name
    # The running statistics moved once, as with the module called directly.
    for key, value in plain_norm.state_dict().items():
        assert torch.equal(fused_norm.state_dict()[key], value), key


@pytest.mark.parametrize("one_plus", [True, False])
@pytest.mark.parametrize("kind", ["batch", "instance", "local-batch"])
def test_channel_chunks_equal_the_concatenation_bit_for_bit(kind, one_plus) -> None:
    results = []
    for chunked in (True, False):
        torch.manual_seed(0)
        x = torch.randn(SHAPE, requires_grad=True)
        gammas = [torch.randn(2, c, 5, 7, requires_grad=True) for c in (2, 4)]
        betas = [torch.randn(2, c, 5, 7, requires_grad=True) for c in (2, 4)]
        if chunked:
            out = modulate(_norms()[kind], x, gammas, betas, 0.2, one_plus)
        else:
            out = _unfused(
                _norms()[kind], x, torch.cat(gammas, 1), torch.cat(betas, 1), 0.2, one_plus
            )
        (out * torch.randn_like(out)).sum().backward()
        results.append([out, x.grad] + [t.grad for t in gammas + betas])
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="same channel counts"):
        modulate(_norms()[kind], x, gammas, betas[::-1])


def _saved_activations(path, slope: float | None = 0.2) -> int:
    """Activation-sized tensors the chain norm -> modulation [-> leaky ReLU] -> conv keeps."""
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    x, gamma, beta = (torch.randn(SHAPE, requires_grad=True) for _ in range(3))
    conv = nn.Conv2d(6, 6, 1)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = conv(path(nn.BatchNorm2d(6, affine=False), x, gamma, beta, slope, True))
    out.sum().backward()  # the saved tensors unpack
    return sum(1 for nbytes in saved.values() if nbytes == x.nbytes)


def test_fused_path_keeps_three_activation_sized_tensors_instead_of_five() -> None:
    # Autograd: input, normalised, 1 + gamma, pre-activation, activation (the conv's input).
    assert _saved_activations(_unfused) == 5
    # Fused: input, 1 + gamma, activation (one tensor for the fused step and the conv).
    assert _saved_activations(modulate) == 3
    # Without the activation (SPADE's shortcut): input, normalised, 1 + gamma, conv input / 3.
    assert _saved_activations(_unfused, None) == 4
    assert _saved_activations(modulate, None) == 3


def test_unsupported_norms_and_no_grad_take_autograds_path() -> None:
    sync = nn.SyncBatchNorm(6, affine=False)
    assert stateless_norm(sync) is None
    assert stateless_norm(nn.BatchNorm2d(6)) is None  # affine: its parameters need gradients
    assert stateless_norm(nn.InstanceNorm2d(6, track_running_stats=True)) is None
    norm = nn.BatchNorm2d(6, affine=False)
    x, gamma, beta = torch.randn(SHAPE), torch.randn(SHAPE), torch.randn(SHAPE)
    with torch.no_grad():
        out = modulate(norm, x, gamma, beta, 0.2)
    assert torch.equal(out, _unfused(nn.BatchNorm2d(6, affine=False), x, gamma, beta, 0.2, True))


def test_bf16_autocast_keeps_dtypes_and_matches_autograd() -> None:
    results = []
    for path in (modulate, _unfused):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch.manual_seed(0)
            x = torch.randn(SHAPE, requires_grad=True)
            gamma = torch.randn(SHAPE, requires_grad=True)
            beta = torch.randn(SHAPE, requires_grad=True)
            conv = nn.Conv2d(6, 6, 1)
            out = path(nn.GroupNorm(3, 6, affine=False), conv(x), gamma, beta, 0.2, True)
        out.float().sum().backward()
        results.append((out, x.grad, gamma.grad, beta.grad))
    for a, b in zip(*results, strict=True):
        assert a.dtype == b.dtype
        torch.testing.assert_close(a, b)


def test_double_backward_through_the_fused_path_raises() -> None:
    x, gamma, beta = (torch.randn(SHAPE, requires_grad=True) for _ in range(3))
    out = modulate(nn.BatchNorm2d(6, affine=False), x, gamma, beta, 0.2)
    (grad_x,) = torch.autograd.grad(out.square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        grad_x.sum().backward()
