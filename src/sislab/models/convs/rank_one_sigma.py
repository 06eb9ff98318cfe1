"""Spectral norm's sigma and the weight it normalises, in one autograd node.

A spectral norm's ``sigma = u^T W v`` (``u``, ``v`` held constant, as torch's ``spectral_norm``
does) sends W a rank-one gradient ``g_sigma u v^T`` beside the gradient W gets from the conv
that uses it. Left to autograd (``vdot(u, mv(W, v))``), the backward writes that outer product
as a new weight-sized tensor and then adds it to the conv's: two weight-sized passes and a fresh
allocation per call, for SPADE's 1024-channel 3x3 kernels (9.4M weights) ~6 ms of a ~25 ms
conv forward and backward at 4x8 (A/B in one process on a 2-core CPU). ``weight_and_sigma``
returns sigma together with an alias of the weight; a caller that uses the alias (the conv, or
the division by sigma) has both gradients arrive in this node's backward, which adds the rank-one
term into the conv's gradient in place, one pass, with the same products and sums as autograd's
(``(g u_i) v_j``, then one addition).

Sigma is computed in the weight's dtype with autocast off: the normalisation of an fp32 weight
does not depend on the precision the convs run in (under CUDA autocast ``mv`` would run in half
precision; on CPU it is fp32 either way).
"""

from __future__ import annotations

import contextlib

import torch


def _full_precision(device: torch.device) -> contextlib.AbstractContextManager:
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()  # meta tensors (the preflight's shape check)


def _sigma(weight: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    groups, rows = u.shape
    matrix = weight.reshape(groups, rows, -1)
    with _full_precision(weight.device):
        # torch's spectral norm: vdot(u, mv(W, v)), one group at a time.
        return torch.stack([torch.vdot(u[g], torch.mv(matrix[g], v[g])) for g in range(groups)])


class _WeightAndSigma(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight: torch.Tensor, u: torch.Tensor, v: torch.Tensor):
        sigma = _sigma(weight, u, v)
        ctx.save_for_backward(u, v)
        ctx.weight_shape = weight.shape
        return weight.view_as(weight), sigma

    @staticmethod
    def backward(ctx, grad_weight: torch.Tensor | None, grad_sigma: torch.Tensor | None):
        u, v = ctx.saved_tensors
        if grad_sigma is None:
            return grad_weight, None, None
        groups, rows = u.shape
        scaled_u = (u * grad_sigma[:, None]).unsqueeze(2)  # (G, rows, 1): vdot's backward
        v_row = v.unsqueeze(1)  # (G, 1, cols)
        if grad_weight is None:
            return torch.bmm(scaled_u, v_row).view(ctx.weight_shape), None, None
        matrix = grad_weight.view(groups, rows, -1) if grad_weight.is_contiguous() else None
        if matrix is not None and not torch.is_grad_enabled() and not torch.compiler.is_compiling():
            # The incoming gradient is the conv's (or the division's) fresh weight gradient,
            # which only this node reads: the alias is used by the norm's own conv or division
            # (not with create_graph, where the gradient is itself part of a graph).
            matrix.baddbmm_(scaled_u, v_row)
            return grad_weight, None, None
        grad = torch.baddbmm(grad_weight.reshape(groups, rows, -1), scaled_u, v_row)
        return grad.view(ctx.weight_shape), None, None


def weight_and_sigma(
    weight: torch.Tensor, u: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(alias of weight, sigma)`` with ``sigma_g = u_g^T W_g v_g`` per group.

    Args:
        weight: The weight, contiguous, whose first dims reshape into ``(G, rows, cols)``.
        u: Left singular vector estimates, ``(G, rows)`` (not differentiated).
        v: Right singular vector estimates, ``(G, cols)`` (not differentiated).

    Returns:
        An alias of ``weight`` for the caller's conv or division (use it, not ``weight``, so
        that sigma's gradient joins the conv's in one pass) and sigma, shape ``(G,)``.
    """
    if torch.is_grad_enabled() and weight.requires_grad:
        return _WeightAndSigma.apply(weight, u.detach(), v.detach())
    return weight, _sigma(weight, u, v)
