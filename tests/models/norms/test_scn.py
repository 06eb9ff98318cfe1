"""SCN: parameter-free norm modulated by V-mixed candidate scales and shifts."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sislab.models.norms.scn import SemanticConditionalNorm


def _batch_norm(x: torch.Tensor) -> torch.Tensor:
    return F.batch_norm(x, None, None, training=True, eps=1e-5)


def test_one_candidate_equals_batch_norm_times_one_plus_gamma_plus_beta() -> None:
    torch.manual_seed(0)
    scn = SemanticConditionalNorm(6, num_candidates=1)
    with torch.no_grad():
        scn.affine_candidates.normal_()
    x = torch.randn(4, 6, 5, 5)
    gamma, beta = scn.affine_candidates.detach()[0].split(6)
    expected = _batch_norm(x) * (1 + gamma[:, None, None]) + beta[:, None, None]
    torch.testing.assert_close(scn(x, torch.ones(4, 1, 5, 5)), expected)


def test_zero_init_is_plain_normalisation_for_softmax_vectors() -> None:
    scn = SemanticConditionalNorm(3, num_candidates=4)
    x = torch.randn(2, 3, 4, 4)
    vectors = torch.softmax(torch.randn(2, 4, 4, 4), dim=1)
    torch.testing.assert_close(scn(x, vectors), _batch_norm(x))
    assert torch.count_nonzero(scn.affine_candidates) == 0


def test_scale_and_shift_are_mixed_per_pixel() -> None:
    torch.manual_seed(0)
    scn = SemanticConditionalNorm(2, num_candidates=2, param_free="instance")
    with torch.no_grad():
        scn.affine_candidates.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0], [-1.0, 0.0, 5.0, 6.0]]))
    x = torch.randn(1, 2, 3, 3)
    vectors = torch.rand(1, 2, 3, 3)
    normalized = F.instance_norm(x, eps=1e-5)
    table = scn.affine_candidates.detach()
    gamma = torch.einsum("bnhw,nc->bchw", vectors, table[:, :2])
    beta = torch.einsum("bnhw,nc->bchw", vectors, table[:, 2:])
    torch.testing.assert_close(scn(x, vectors), normalized * (1 + gamma) + beta)
