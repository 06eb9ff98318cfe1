"""Convolutions with many weights and few output positions as one matrix product, on CPU
(``train.unfolded_convs``).

The generators' first blocks run their largest kernels at their smallest resolutions: OASIS's
1024-to-1024 3x3 convs at 4x8 and 8x16 when it trains at 128x256, SPADE's at 2x4 and 4x8 at
64x128. A 9.4M-weight kernel over 32 output positions is a memory-bound product of a tiny
matrix with the weight, which oneDNN's fp32 convolution runs poorly on CPU: 66 ms forward and
backward for 1024 to 1024 channels at 4x8 (NHWC; 50 ms NCHW), 40 of them in the weight's
gradient. Unfolding the input's patches into a ``(positions, kh * kw * in)`` matrix ("im2col")
and multiplying it by the kernel read as an ``(out, kh * kw * in)`` matrix, in the kernel's
memory order, took 18 ms for the same forward and backward (docs/benchmarks.md). Same maths;
the sums run in another order (float32 results within ~3e-6 of oneDNN's, relative to the
largest value).

Where it does not pay (oneDNN wins from ~512 positions on, and on kernels under ~4M weights),
:func:`prefers_unfolded` keeps torch's convolution, as it does on CUDA, under autocast and
inside ``torch.compile``.
"""

from __future__ import annotations

from types import MethodType

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from sislab.models.layout import channels_last_view, from_channels_last_view, stored_channels_last

# Measured on a 2-vCPU Intel Xeon with AMX (forward and backward, batch 1 and 4): the matrix
# product was faster for kernels of 1024x512x3x3 (4.7M) and more up to ~128-288 positions, and
# for 512x512x3x3 (2.4M) at best even.
MIN_WEIGHTS = 2**22
WEIGHTS_PER_POSITION = 2**15


def output_positions(x: torch.Tensor, weight: torch.Tensor, padding: tuple[int, int]) -> int:
    """Output positions of a stride-1 convolution over the whole batch (``N * Ho * Wo``)."""
    height = x.shape[-2] + 2 * padding[0] - weight.shape[-2] + 1
    width = x.shape[-1] + 2 * padding[1] - weight.shape[-1] + 1
    return x.shape[0] * height * width


def prefers_unfolded(
    x: torch.Tensor,
    weight: torch.Tensor,
    padding: tuple[int, int],
    min_weights: int = MIN_WEIGHTS,
    weights_per_position: int = WEIGHTS_PER_POSITION,
) -> bool:
    """Whether the unfolded product is the faster way for this call: a CPU float32/float64
    convolution outside autocast and compilation, with at least ``min_weights`` weights and
    ``weights_per_position`` weights per output position of the batch."""
    return (
        x.device.type == "cpu"
        and x.ndim == 4
        and x.dtype in (torch.float32, torch.float64)
        and weight.dtype == x.dtype
        and weight.numel() >= min_weights
        and weight.numel() >= output_positions(x, weight, padding) * weights_per_position
        and not torch.is_autocast_enabled("cpu")
        and not torch.compiler.is_compiling()
    )


class _UnfoldedConv2d(torch.autograd.Function):
    """Stride-1, undilated, ungrouped ``conv2d`` as ``patches @ kernel^T``.

    The patches' columns follow the kernel's memory order (``(kh, kw, in)`` for a channels-last
    kernel, ``(in, kh, kw)`` for a contiguous one), so the kernel is read as a matrix without a
    copy and its gradient is written in its own layout. Activations keep the input's layout."""

    @staticmethod
    def forward(ctx, x, weight, bias, padding):
        kernel_last = stored_channels_last(weight)
        if not (kernel_last or weight.is_contiguous()):
            weight = weight.contiguous()
        n, channels = x.shape[:2]
        out_channels, _, kh, kw = weight.shape
        image = channels_last_view(x)  # (N, H, W, C), in whatever strides x has
        if padding != (0, 0):
            image = F.pad(image, (0, 0, padding[1], padding[1], padding[0], padding[0]))
        out_h, out_w = image.shape[1] - kh + 1, image.shape[2] - kw + 1
        s_n, s_h, s_w, s_c = image.stride()
        if kernel_last:
            size, strides = (kh, kw, channels), (s_h, s_w, s_c)
            matrix = channels_last_view(weight).reshape(out_channels, -1)
        else:
            size, strides = (channels, kh, kw), (s_c, s_h, s_w)
            matrix = weight.reshape(out_channels, -1)
        patches = image.as_strided((n, out_h, out_w, *size), (s_n, s_h, s_w, *strides))
        patches = patches.reshape(n * out_h * out_w, -1)
        # Written into a channels-last output of its own: returning a view of the product
        # would forbid the in-place ops that follow some convs (OASIS's leaky ReLUs).
        y = torch.empty(
            (n, out_channels, out_h, out_w),
            dtype=x.dtype,
            device=x.device,
            memory_format=torch.channels_last,
        )
        rows = channels_last_view(y).view(n * out_h * out_w, out_channels)
        if bias is None:
            torch.mm(patches, matrix.t(), out=rows)
        else:
            torch.addmm(bias, patches, matrix.t(), out=rows)
        ctx.save_for_backward(patches, matrix)
        ctx.geometry = (x.shape, tuple(image.shape), (kh, kw), padding, kernel_last)
        ctx.input_channels_last = stored_channels_last(x)
        ctx.has_bias = bias is not None
        return y if ctx.input_channels_last else y.contiguous()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        patches, matrix = ctx.saved_tensors
        x_shape, padded_shape, (kh, kw), padding, kernel_last = ctx.geometry
        n, out_channels, out_h, out_w = grad.shape
        grad_rows = channels_last_view(grad).reshape(n * out_h * out_w, out_channels)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_patches = grad_rows @ matrix
            if kernel_last:
                grad_patches = grad_patches.view(n, out_h, out_w, kh, kw, -1)
            else:
                grad_patches = grad_patches.view(n, out_h, out_w, -1, kh, kw)
            padded = grad_rows.new_zeros(padded_shape)
            for i in range(kh):
                for j in range(kw):
                    tap = grad_patches[:, :, :, i, j] if kernel_last else grad_patches[..., i, j]
                    padded[:, i : i + out_h, j : j + out_w] += tap
            height, width = x_shape[-2:]
            image = padded[:, padding[0] : padding[0] + height, padding[1] : padding[1] + width]
            grad_x = from_channels_last_view(image)
            layout = torch.channels_last if ctx.input_channels_last else torch.contiguous_format
            grad_x = grad_x.contiguous(memory_format=layout)
        if ctx.needs_input_grad[1]:
            rows = grad_rows.t() @ patches  # (out, kernel columns), in the kernel's order
            if kernel_last:
                grad_w = from_channels_last_view(rows.view(out_channels, kh, kw, -1))
            else:
                grad_w = rows.view(out_channels, -1, kh, kw)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_rows.sum(0)
        return grad_x, grad_w, grad_b, None


def unfolded_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    padding: tuple[int, int] = (0, 0),
) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, padding=padding)`` (stride 1, no dilation, one group) as a
    product of the input's unfolded patches with the kernel; once differentiable."""
    return _UnfoldedConv2d.apply(x, weight, bias, padding)


def _conv_forward(
    self: nn.Conv2d, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    # The output has the padded size whatever the padding mode: the rule counts its positions.
    if not prefers_unfolded(x, weight, self.padding, *self.unfolded_limits):
        return nn.Conv2d._conv_forward(self, x, weight, bias)
    if self.padding_mode == "zeros":
        return unfolded_conv2d(x, weight, bias, self.padding)
    x = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
    return unfolded_conv2d(x, weight, bias)


def use_unfolded_convs(
    module: nn.Module,
    min_weights: int = MIN_WEIGHTS,
    weights_per_position: int = WEIGHTS_PER_POSITION,
) -> int:
    """Let ``module``'s stride-1, undilated, ungrouped ``Conv2d`` layers (spectrally normalised
    ones included) run as :func:`unfolded_conv2d` at the calls :func:`prefers_unfolded` picks
    with these limits; in place, parameters and state dicts unchanged.

    Returns:
        How many layers were changed.
    """
    changed = 0
    for sub in module.modules():
        if (
            isinstance(sub, nn.Conv2d)
            and sub.groups == 1
            and sub.stride == (1, 1)
            and sub.dilation == (1, 1)
            and isinstance(sub.padding, tuple)
        ):
            # An instance attribute, not a class swap: torch's parametrize (spectral norm) has
            # already given the layer a class of its own.
            sub._conv_forward = MethodType(_conv_forward, sub)
            sub.unfolded_limits = (min_weights, weights_per_position)
            changed += 1
    return changed
