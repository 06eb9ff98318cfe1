"""Spectral norm's sigma and the weight it normalises, in one autograd node.

A spectral norm's ``sigma = u^T W v`` (``u``, ``v`` held constant, as torch's ``spectral_norm``
does) sends W a rank-one gradient ``g_sigma u v^T`` beside the gradient W gets from the conv
that uses it. Left to autograd (``vdot(u, mv(W, v))``), the backward writes that outer product
as a new weight-sized tensor and then adds it to the conv's: two weight-sized passes and a fresh
allocation per call, for SPADE's 1024-channel 3x3 kernels (9.4M weights) ~6 ms of a ~30 ms
conv forward and backward at 4x8 (timed in one process on a 2-core CPU, docs/benchmarks.md).
``weight_and_sigma`` returns sigma together with an alias of the weight; a caller that uses the
alias (the conv, or the division by sigma) has both gradients arrive in this node's backward,
which adds the rank-one term into the conv's gradient in place, one pass, bit for bit
autograd's arithmetic (``(g u_i) v_j`` rounded, then one addition).

A channels-last kernel (``train.channels_last``) is read as a matrix in its memory order, its
columns ``(kh, kw, in)`` instead of torch's ``(in, kh, kw)``, and ``v`` reordered to match (a
few thousand elements): the ``reshape`` to torch's order would copy the whole kernel at every
call (four copies of each of SPADE's 9.4M-weight kernels per step, 1.9% of its 256x512 step).
The products are the same; ``W v``'s sums run in another order (rounding aside).

Sigma is computed in the weight's dtype with autocast off: the normalisation of an fp32 weight
does not depend on the precision the convs run in (under CUDA autocast ``mv`` would run in half
precision; on CPU it is fp32 either way).
"""

from __future__ import annotations

import contextlib

import torch

from sislab.models.layout import (
    channels_last_view,
    from_channels_last_view,
    stored_channels_last,
)

# Elements of the outer product made at a time (1 MB in fp32): small enough for the cache, large
# enough that the loop over blocks costs nothing beside the pass over the weight.
BLOCK_ELEMENTS = 1 << 18


def _full_precision(device: torch.device) -> contextlib.AbstractContextManager:
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()  # meta tensors (the preflight's shape check)


def matrix_view(weight: torch.Tensor, groups: int, rows: int) -> torch.Tensor:
    """``weight`` as ``(groups, rows, cols)`` without a copy: torch's flattening, or for a
    channels-last kernel its columns in memory order ``(kh, kw, in)`` (``to_columns``)."""
    if stored_channels_last(weight):
        weight = channels_last_view(weight)
    return weight.reshape(groups, rows, -1)


def to_columns(v: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``v`` ``(groups, cols)`` in torch's column order as ``matrix_view(weight)``'s columns."""
    if not stored_channels_last(weight):
        return v
    channels, kh, kw = weight.shape[-3:]
    return channels_last_view(v.reshape(-1, channels, kh, kw)).reshape(v.shape)


def from_columns(v: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``to_columns``'s inverse: ``matrix_view(weight)``'s column order back to torch's."""
    if not stored_channels_last(weight):
        return v
    channels, kh, kw = weight.shape[-3:]
    return from_channels_last_view(v.reshape(-1, kh, kw, channels)).reshape(v.shape)


def _sigma(weight: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    groups, rows = u.shape
    matrix, v = matrix_view(weight, groups, rows), to_columns(v, weight)
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
        scaled_u = u * grad_sigma[:, None]  # vdot's backward: g * u
        groups, rows = u.shape
        if (
            grad_weight is not None
            and (grad_weight.is_contiguous() or stored_channels_last(grad_weight))
            and not torch.is_grad_enabled()
            and not torch.compiler.is_compiling()
        ):
            # The incoming gradient is the conv's (or the division's) fresh weight gradient,
            # which only this node reads: the alias is used by the norm's own conv or division
            # (not with create_graph, where the gradient is itself part of a graph).
            matrix = matrix_view(grad_weight, groups, rows)
            _add_outer_in_place(matrix, scaled_u, to_columns(v, grad_weight))
            return grad_weight, None, None
        grad = scaled_u.unsqueeze(2) * v.unsqueeze(1)  # mv's backward: outer(g u, v)
        if grad_weight is not None:
            grad = grad_weight.reshape(groups, rows, -1) + grad
        return grad.view(ctx.weight_shape), None, None


def _add_outer_in_place(matrix: torch.Tensor, scaled_u: torch.Tensor, v: torch.Tensor) -> None:
    """``matrix[g] += outer(scaled_u[g], v[g])`` with autograd's arithmetic (each product
    rounded, then added: bit for bit torch's ``ger`` and addition; a GEMM's ``baddbmm_`` may fuse
    them), a block of rows at a time so the products stay in cache."""
    groups, rows, cols = matrix.shape
    step = max(1, BLOCK_ELEMENTS // cols)
    for g in range(groups):
        for start in range(0, rows, step):
            block = slice(start, start + step)
            matrix[g, block].add_(scaled_u[g, block, None] * v[g])


def weight_and_sigma(
    weight: torch.Tensor, u: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(alias of weight, sigma)`` with ``sigma_g = u_g^T W_g v_g`` per group.

    Args:
        weight: The weight, whose first dims reshape into ``(G, rows, cols)``.
        u: Left singular vector estimates, ``(G, rows)`` (not differentiated).
        v: Right singular vector estimates, ``(G, cols)`` (not differentiated).

    Returns:
        An alias of ``weight`` for the caller's conv or division (use it, not ``weight``, so
        that sigma's gradient joins the conv's in one pass) and sigma, shape ``(G,)``.
    """
    if torch.is_grad_enabled() and weight.requires_grad:
        return _WeightAndSigma.apply(weight, u.detach(), v.detach())
    return weight, _sigma(weight, u, v)
