"""The modulation every conditional norm ends with, and the activation after it, in one step.

SPADE-style norms end in ``norm(x) * (1 + gamma) + beta`` (CLADE: ``norm(x) * gamma + beta``) and
their residual block applies ``leaky_relu`` next. Left to autograd, that chain keeps for its
backward the norm's input, the normalised tensor, ``1 + gamma``, the pre-activation and the
activation (which the next conv keeps too): five tensors the size of the activation per norm
layer, the largest share of a SPADE generator step's saved tensors at 256x512. ``modulate``
computes the same values with the same ops but keeps the norm's input, the scale and the
activation only, and recomputes the normalised tensor in the backward (one elementwise pass and
a reduction, beside the convolutions around it). Forward values and gradients are bit-identical to
autograd's (tests/models/norms/test_modulation.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

Recompute = Callable[[torch.Tensor], torch.Tensor]
Chunks = torch.Tensor | Sequence[torch.Tensor]
"""One tensor, or its channel chunks in order (``torch.cat(chunks, dim=1)`` without the copy)."""


def stateless_norm(norm: nn.Module) -> Recompute | None:
    """``x -> norm(x)`` without side effects (no running-statistics update), or None.

    None where the recomputation cannot be exact or cheap: synchronised batch norm (its statistics
    need a collective), affine norms, instance norm with running statistics, unknown modules.
    """
    kind = type(norm)
    if kind is nn.BatchNorm2d and not norm.affine:
        if norm.training or norm.running_mean is None:
            return lambda x: F.batch_norm(x, None, None, training=True, eps=norm.eps)
        return lambda x: F.batch_norm(x, norm.running_mean, norm.running_var, eps=norm.eps)
    if kind is nn.InstanceNorm2d and not norm.affine and not norm.track_running_stats:
        return lambda x: F.instance_norm(x, eps=norm.eps)
    if kind is nn.GroupNorm and not norm.affine:
        return lambda x: F.group_norm(x, norm.num_groups, eps=norm.eps)
    recompute = getattr(norm, "stateless", None)
    return recompute() if callable(recompute) else None


def modulate(
    norm: nn.Module,
    x: torch.Tensor,
    gamma: Chunks,
    beta: Chunks,
    negative_slope: float | None = None,
    one_plus: bool = True,
) -> torch.Tensor:
    """``leaky_relu(norm(x) * (1 + gamma) + beta, negative_slope)``.

    Args:
        norm: The parameter-free norm module (its running statistics update as when called).
        x: The activation to normalise.
        gamma: Scale, broadcastable to ``x``; or its channel chunks (VASIS builds the layout and
            the noise channels apart), which the fused path modulates in place of a concatenation.
        beta: Shift, as ``gamma`` (chunks of the same channel counts).
        negative_slope: The leaky ReLU's slope; None: no activation.
        one_plus: ``1 + gamma`` (SPADE) or ``gamma`` (CLADE) as the scale.

    Returns:
        The modulated (and activated) tensor. With gradients enabled, outside ``torch.compile``
        and a norm ``stateless_norm`` can recompute, autograd keeps ``x``, the scale and (with
        an activation) the result only.
    """
    gammas, betas = _as_chunks(gamma), _as_chunks(beta)
    if [g.shape[1] for g in gammas] != [b.shape[1] for b in betas]:
        raise ValueError("gamma and beta must be split into chunks of the same channel counts")
    if torch.is_grad_enabled() and not torch.compiler.is_compiling():
        recompute = stateless_norm(norm)
        if recompute is not None:
            return _ModulatedLeakyReLU.apply(
                x, norm, recompute, negative_slope, one_plus, len(gammas), *gammas, *betas
            )
    gamma, beta = _joined(gammas), _joined(betas)
    scale = 1 + gamma if one_plus else gamma
    return activate(norm(x) * scale + beta, negative_slope)


def _as_chunks(value: Chunks) -> tuple[torch.Tensor, ...]:
    return (value,) if isinstance(value, torch.Tensor) else tuple(value)


def _joined(chunks: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return chunks[0] if len(chunks) == 1 else torch.cat(chunks, dim=1)


def activate(x: torch.Tensor, negative_slope: float | None) -> torch.Tensor:
    """``leaky_relu(x, negative_slope)``, or ``x`` itself when the slope is None (no activation)."""
    return x if negative_slope is None else F.leaky_relu(x, negative_slope)


_FIRST_CHUNK = 6  # forward's arguments: x, norm, recompute, slope, one_plus, count, chunks...


class _ModulatedLeakyReLU(torch.autograd.Function):
    """``modulate``'s fused path: autograd's ops and their backward formulas, fewer saved tensors.

    With several chunks, each is modulated into its channels of one preallocated output with the
    same ops (so the values equal those of the concatenated gamma and beta bit for bit).
    """

    @staticmethod
    def forward(ctx, x, norm, recompute, negative_slope, one_plus, num_chunks, *gammas_betas):
        gammas, betas = gammas_betas[:num_chunks], gammas_betas[num_chunks:]
        normalized = norm(x)
        # The scales, not the gammas: 1 + gamma is a tensor of its own where gamma may be a view
        # of a larger one (SC-GAN's gamma and beta are halves of one tensor).
        scales = tuple(1 + gamma if one_plus else gamma for gamma in gammas)
        if num_chunks == 1:
            out = normalized * scales[0] + betas[0]
        else:
            out = torch.empty_like(normalized)
            for sl, scale, beta in zip(_slices(gammas), scales, betas, strict=True):
                torch.mul(normalized[:, sl], scale, out=out[:, sl]).add_(beta)
        out = activate(out, negative_slope)
        ctx.recompute, ctx.negative_slope = recompute, negative_slope
        ctx.metas = [(t.shape, t.dtype) for t in gammas_betas]
        ctx.slices = _slices(gammas)
        device = x.device.type
        # The recomputation must see the autocast state the forward saw (e.g. group_norm in fp32).
        ctx.autocast = (device, torch.is_autocast_enabled(device), torch.get_autocast_dtype(device))
        ctx.save_for_backward(x, out if negative_slope is not None else None, *scales)
        return out

    @staticmethod
    # A second-order gradient would miss the recomputed norm's own graph: raise instead.
    @once_differentiable
    def backward(ctx, grad_out):
        x, out, *scales = ctx.saved_tensors
        grad_pre = grad_out
        if ctx.negative_slope is not None:
            # leaky_relu's backward from its result: result > 0 exactly where its input is > 0.
            grad_pre = torch.ops.aten.leaky_relu_backward(grad_out, out, ctx.negative_slope, True)
        device, enabled, dtype = ctx.autocast
        with torch.enable_grad(), torch.autocast(device, dtype=dtype, enabled=enabled):
            x_ = x.detach().requires_grad_(ctx.needs_input_grad[0])
            normalized = ctx.recompute(x_)
        grad_x = None
        if ctx.needs_input_grad[0]:
            if len(scales) == 1:
                grad_normalized = grad_pre * scales[0]
            else:
                grad_normalized = torch.empty_like(grad_pre)
                for sl, scale in zip(ctx.slices, scales, strict=True):
                    torch.mul(grad_pre[:, sl], scale, out=grad_normalized[:, sl])
            (grad_x,) = torch.autograd.grad(normalized, x_, grad_normalized)
        num_chunks = len(scales)
        grads = []
        for i, (shape, dtype) in enumerate(ctx.metas):
            sl = ctx.slices[i % num_chunks]
            if not ctx.needs_input_grad[_FIRST_CHUNK + i]:
                grads.append(None)
            elif i < num_chunks:  # a gamma
                grad = (grad_pre[:, sl] * normalized.detach()[:, sl]).sum_to_size(shape)
                grads.append(grad.to(dtype))
            else:
                grads.append(grad_pre[:, sl].sum_to_size(shape).to(dtype))
        return grad_x, None, None, None, None, None, *grads


def _slices(gammas: Sequence[torch.Tensor]) -> list[slice]:
    """Each chunk's channels in the whole (the chunks' channel counts add up to the whole's)."""
    if len(gammas) == 1:
        return [slice(None)]
    bounds, start = [], 0
    for gamma in gammas:
        bounds.append(slice(start, start + gamma.shape[1]))
        start += gamma.shape[1]
    return bounds
