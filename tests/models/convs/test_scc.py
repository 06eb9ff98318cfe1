"""SCC: one stacked conv equals the per-candidate formulation of the paper and the code."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from sislab.models.convs.scc import INIT_GAIN, SemanticConditionalConv2d
from sislab.models.convs.vector_concat import VectorConcatConv2d


def _candidates(scc: SemanticConditionalConv2d) -> torch.Tensor:
    return scc.candidate_weight.detach()


def test_single_candidate_equals_plain_conv() -> None:
    torch.manual_seed(0)
    scc = SemanticConditionalConv2d(5, 7, num_candidates=1, use_spectral_norm=False)
    x = torch.randn(2, 5, 9, 11)
    out = scc(x, torch.ones(2, 1, 9, 11))
    expected = F.conv2d(x, _candidates(scc)[0], padding=1)
    torch.testing.assert_close(out, expected)


def test_one_hot_vectors_select_a_candidate_per_pixel() -> None:
    torch.manual_seed(0)
    scc = SemanticConditionalConv2d(4, 6, num_candidates=3, use_spectral_norm=False)
    x = torch.randn(2, 4, 8, 8)
    choice = torch.randint(0, 3, (2, 8, 8))
    vectors = F.one_hot(choice, 3).permute(0, 3, 1, 2).float()
    out = scc(x, vectors)
    per_candidate = torch.stack([F.conv2d(x, k, padding=1) for k in _candidates(scc)], dim=1)
    expected = per_candidate.gather(1, choice[:, None, None].expand(-1, 1, 6, -1, -1)).squeeze(1)
    torch.testing.assert_close(out, expected)


def test_soft_vectors_equal_the_codes_weighted_sum_of_n_convs() -> None:
    torch.manual_seed(0)
    scc = SemanticConditionalConv2d(3, 4, num_candidates=2, stride=2, bias=True)
    with torch.no_grad():
        scc.candidate_bias.normal_()
    scc.eval()
    x = torch.randn(2, 3, 10, 10)
    vectors = torch.rand(2, 2, 5, 5)
    weights, biases = scc.candidate_weight, scc.candidate_bias
    expected = sum(
        vectors[:, i : i + 1] * F.conv2d(x, weights[i], biases[i], stride=2, padding=1)
        for i in range(2)
    )
    torch.testing.assert_close(scc(x, vectors), expected)


def test_spectral_norm_is_per_candidate() -> None:
    torch.manual_seed(0)
    scc = SemanticConditionalConv2d(6, 5, num_candidates=3, use_spectral_norm=True)
    with torch.no_grad():
        scc.parametrizations.candidate_weight.original[1] *= 10.0  # candidates differ in scale
    for _ in range(50):
        scc(torch.randn(1, 6, 4, 4), torch.ones(1, 3, 4, 4) / 3)  # power iterations
    scc.eval()
    # A joint norm over the stack would leave candidates 0 and 2 near sigma 0.1.
    sigmas = [torch.linalg.matrix_norm(k.reshape(5, -1), ord=2) for k in scc.candidate_weight]
    torch.testing.assert_close(torch.stack(sigmas), torch.ones(3), atol=1e-2, rtol=0)


def test_candidates_get_xavier_init_with_one_candidates_fans() -> None:
    torch.manual_seed(0)
    scc = SemanticConditionalConv2d(64, 32, num_candidates=4, use_spectral_norm=False)
    expected = INIT_GAIN * math.sqrt(2.0 / (64 * 9 + 32 * 9))
    assert scc.candidate_weight.std().item() == pytest.approx(expected, rel=0.05)


def test_mismatched_vectors_are_rejected() -> None:
    scc = SemanticConditionalConv2d(2, 2, num_candidates=3, use_spectral_norm=False)
    with pytest.raises(ValueError, match="3 candidates"):
        scc(torch.randn(1, 2, 4, 4), torch.ones(1, 2, 4, 4))


def test_vector_concat_conv_is_the_sum_of_its_kernels_over_features_and_vectors() -> None:
    torch.manual_seed(0)
    conv = VectorConcatConv2d(4, 5, vector_channels=3, num_copies=3, use_spectral_norm=False)
    x, vectors = torch.randn(2, 4, 6, 6), torch.rand(2, 3, 6, 6)
    summed_kernel = conv.kernels.candidate_weight.detach().sum(dim=0)
    expected = F.conv2d(torch.cat([x, vectors], dim=1), summed_kernel, padding=1)
    torch.testing.assert_close(conv(x, vectors), expected)
    assert sum(p.numel() for p in conv.parameters()) == 3 * (4 + 3) * 5 * 9


def test_the_candidate_mix_equals_the_previous_einsum_forward_and_backward() -> None:
    # The mix was an einsum (a permuted copy and B*H*W tiny matmuls on CPU); now n fused
    # multiply-adds: same values and gradients.
    torch.manual_seed(0)
    scc = SemanticConditionalConv2d(5, 6, num_candidates=3, use_spectral_norm=False)
    x = torch.randn(2, 5, 8, 8, requires_grad=True)
    vectors = torch.softmax(torch.randn(2, 3, 8, 8), dim=1).requires_grad_()
    upstream = torch.randn(2, 6, 8, 8)

    def grads(out: torch.Tensor) -> list[torch.Tensor]:
        return torch.autograd.grad((out * upstream).sum(), [x, vectors, scc.candidate_weight])

    now = scc(x, vectors)
    before = torch.einsum("bnchw,bnhw->bchw", scc.candidate_outputs(x), vectors)
    torch.testing.assert_close(now, before)
    for a, b in zip(grads(now), grads(before), strict=True):
        torch.testing.assert_close(a, b)


def test_sigmas_divide_the_vectors_as_they_divided_the_kernels() -> None:
    # Spectral-normed and without bias, the n sigmas scale the (B, n, H, W) mixing vectors
    # instead of the kernels: same values, gradients and power iteration as the weight path.
    torch.manual_seed(0)
    scc = SemanticConditionalConv2d(5, 6, num_candidates=3).double()
    reference = copy.deepcopy(scc)
    x = torch.randn(2, 5, 8, 8, dtype=torch.float64)
    vectors = torch.softmax(torch.randn(2, 3, 8, 8, dtype=torch.float64), dim=1)
    upstream = torch.randn(2, 6, 8, 8, dtype=torch.float64)
    sigma_calls = []
    scc.parametrizations.candidate_weight[0].register_forward_hook(
        lambda norm, args, out: sigma_calls.append(tuple(out[1].shape))
    )

    def step(module, old_path: bool) -> list[torch.Tensor]:
        inputs = [x.clone().requires_grad_(), vectors.clone().requires_grad_()]
        if old_path:  # the kernels divided by their sigmas, then mixed
            out = torch.einsum("bnchw,bnhw->bchw", module.candidate_outputs(inputs[0]), inputs[1])
        else:
            out = module(*inputs)
        original = module.parametrizations.candidate_weight.original
        return [out, *torch.autograd.grad((out * upstream).sum(), [*inputs, original])]

    for _ in range(2):
        for now, before in zip(step(scc, False), step(reference, True), strict=True):
            torch.testing.assert_close(now, before, rtol=1e-10, atol=1e-12)
        for key, value in reference.state_dict().items():
            assert torch.equal(scc.state_dict()[key], value), key
    assert sigma_calls == [(3,), (3,)]  # sigma alone, never the divided kernels
