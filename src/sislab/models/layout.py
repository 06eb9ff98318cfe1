"""Channels-last storage of kernels, kernel stacks and activations (``train.channels_last``).

A 4-D tensor ``(N, C, H, W)`` or kernel ``(out, in, kh, kw)``, and SC-GAN's 5-D candidate stacks
``(n, out, in, kh, kw)``, are channels-last when their dim -3 (channels, or input channels) is
innermost in memory: NHWC, ``(out, kh, kw, in)``, ``(n, out, kh, kw, in)``.
"""

from __future__ import annotations

import torch


def channels_last_order(ndim: int) -> tuple[int, ...]:
    """The permutation that makes a channels-last tensor's view contiguous:
    ``(..., c, h, w) -> (..., h, w, c)``."""
    return (*range(ndim - 3), ndim - 2, ndim - 1, ndim - 3)


def channels_last_view(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` permuted to ``(..., h, w, c)``: a contiguous view of a channels-last tensor."""
    return tensor.permute(channels_last_order(tensor.ndim))


def from_channels_last_view(view: torch.Tensor) -> torch.Tensor:
    """``channels_last_view``'s inverse: ``(..., h, w, c)`` back to torch's ``(..., c, h, w)``."""
    order = channels_last_order(view.ndim)
    return view.permute(tuple(order.index(d) for d in range(view.ndim)))


def stored_channels_last(tensor: torch.Tensor) -> bool:
    """A 4-D or 5-D tensor stored channels-last whose flattening in torch's (NCHW) order is not
    a view (a tensor whose strides fit both layouts counts as contiguous)."""
    return (
        tensor.ndim in (4, 5)
        and not tensor.is_contiguous()
        and channels_last_view(tensor).is_contiguous()
    )


def as_channels_last(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor``'s values stored channels-last (for 4-D, torch's ``channels_last`` format;
    5-D stacks, which torch's formats do not cover, with their dim -3 innermost)."""
    if tensor.ndim == 4:
        return tensor.contiguous(memory_format=torch.channels_last)
    return from_channels_last_view(channels_last_view(tensor).contiguous())
