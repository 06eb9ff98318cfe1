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

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

Recompute = Callable[[torch.Tensor], torch.Tensor]


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
    gamma: torch.Tensor,
    beta: torch.Tensor,
    negative_slope: float | None = None,
    one_plus: bool = True,
) -> torch.Tensor:
    """``leaky_relu(norm(x) * (1 + gamma) + beta, negative_slope)``.

    Args:
        norm: The parameter-free norm module (its running statistics update as when called).
        x: The activation to normalise.
        gamma: Scale, broadcastable to ``x``.
        beta: Shift, broadcastable to ``x``.
        negative_slope: The leaky ReLU's slope; None: no activation.
        one_plus: ``1 + gamma`` (SPADE) or ``gamma`` (CLADE) as the scale.

    Returns:
        The modulated (and activated) tensor. With gradients enabled, outside ``torch.compile``
        and a norm ``stateless_norm`` can recompute, autograd keeps ``x``, the scale and (with
        an activation) the result only.
    """
    if torch.is_grad_enabled() and not torch.compiler.is_compiling():
        recompute = stateless_norm(norm)
        if recompute is not None:
            return _ModulatedLeakyReLU.apply(
                x, gamma, beta, norm, recompute, negative_slope, one_plus
            )
    scale = 1 + gamma if one_plus else gamma
    return activate(norm(x) * scale + beta, negative_slope)


def activate(x: torch.Tensor, negative_slope: float | None) -> torch.Tensor:
    """``leaky_relu(x, negative_slope)``, or ``x`` itself when the slope is None (no activation)."""
    return x if negative_slope is None else F.leaky_relu(x, negative_slope)


class _ModulatedLeakyReLU(torch.autograd.Function):
    """``modulate``'s fused path: autograd's ops and their backward formulas, fewer saved tensors."""

    @staticmethod
    def forward(ctx, x, gamma, beta, norm, recompute, negative_slope, one_plus):
        scale = 1 + gamma if one_plus else gamma
        out = activate(norm(x) * scale + beta, negative_slope)
        ctx.recompute, ctx.negative_slope = recompute, negative_slope
        ctx.gamma_meta, ctx.beta_meta = (gamma.shape, gamma.dtype), (beta.shape, beta.dtype)
        device = x.device.type
        # The recomputation must see the autocast state the forward saw (e.g. group_norm in fp32).
        ctx.autocast = (device, torch.is_autocast_enabled(device), torch.get_autocast_dtype(device))
        # The scale, not gamma: 1 + gamma is a tensor of its own where gamma may be a view of a
        # larger one (SC-GAN's gamma and beta are halves of one tensor).
        ctx.save_for_backward(x, scale, out if negative_slope is not None else None)
        return out

    @staticmethod
    # A second-order gradient would miss the recomputed norm's own graph: raise instead.
    @once_differentiable
    def backward(ctx, grad_out):
        x, scale, out = ctx.saved_tensors
        grad_pre = grad_out
        if ctx.negative_slope is not None:
            # leaky_relu's backward from its result: result > 0 exactly where its input is > 0.
            grad_pre = torch.ops.aten.leaky_relu_backward(grad_out, out, ctx.negative_slope, True)
        device, enabled, dtype = ctx.autocast
        with torch.enable_grad(), torch.autocast(device, dtype=dtype, enabled=enabled):
            x_ = x.detach().requires_grad_(ctx.needs_input_grad[0])
            normalized = ctx.recompute(x_)
        grad_x = grad_gamma = grad_beta = None
        if ctx.needs_input_grad[0]:
            (grad_x,) = torch.autograd.grad(normalized, x_, grad_pre * scale)
        if ctx.needs_input_grad[1]:
            shape, dtype = ctx.gamma_meta
            grad_gamma = (grad_pre * normalized.detach()).sum_to_size(shape).to(dtype)
        if ctx.needs_input_grad[2]:
            shape, dtype = ctx.beta_meta
            grad_beta = grad_pre.sum_to_size(shape).to(dtype)
        return grad_x, grad_gamma, grad_beta, None, None, None, None
