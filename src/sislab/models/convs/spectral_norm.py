"""Spectral norm as torch computes it, with the division by sigma moved to the smaller tensor.

A spectrally normalised convolution is ``conv(x, W / sigma)``. The convolution is linear in the
weight, so it equals ``conv(x, W) / sigma``: the same maths, rounding aside. torch divides the
weight (forward) and runs the division's backward over the weight as well (the gradient of W
and of sigma: a few more weight-sized element-wise passes). At the low resolutions of the
generators' first blocks and the discriminators' last layers the weight is far larger than the
output (SPADE's 1024-channel 3x3 convs at 8x16: 9.4M weights, 131k outputs per image), and the
divided weight is also kept for the backward, once per call: dividing the output instead took
SPADE's 64x128 CPU step from 1.52 to 1.39 s and its peak memory from 2.95 to 2.53 GB (A/B,
docs/benchmarks.md). :class:`SpectralNormConv2d` picks, at every call, whichever of the two is
smaller.

The parametrization is torch's (``torch.nn.utils.parametrizations.spectral_norm``: same ``u``, ``v``
buffers, same power iteration, same state-dict names); :class:`SpectralNorm` adds a way to ask it
for the weight and sigma apart, through the module call so that hooks on the norm (gradient
accumulation's replay of the power iteration) see every call, and takes sigma's gradient into
the weight's in one pass (``rank_one_sigma.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm
from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm

from sislab.models.convs.rank_one_sigma import (
    from_columns,
    matrix_view,
    to_columns,
    weight_and_sigma,
)
from sislab.models.layout import stored_channels_last


class SpectralNorm(_SpectralNorm):
    """torch's spectral-norm parametrization that can also return sigma apart from the weight.

    ``norm(weight)`` is torch's ``weight / sigma``; ``norm(weight, undivided=True)`` is
    ``(weight, sigma)`` after the same power iteration (one per training-mode call), for a
    caller that divides something smaller than the weight. Both go through
    :func:`~sislab.models.convs.rank_one_sigma.weight_and_sigma`: the same values as torch's,
    with sigma's gradient added into the weight's in one pass.
    """

    @torch.no_grad()
    def power_iteration(self, weight: torch.Tensor) -> None:
        """torch's power iteration on ``weight``'s ``u`` and ``v``, in place; a channels-last
        kernel is read in its memory order (``rank_one_sigma.matrix_view``) instead of as
        torch's flattened copy, ``u`` and ``v`` kept in torch's order (state dicts unchanged)."""
        if self.dim != 0 or not stored_channels_last(weight):
            self._power_method(self._reshape_weight_to_matrix(weight), self.n_power_iterations)
            return
        matrix = matrix_view(weight, 1, weight.shape[0])[0]
        for _ in range(self.n_power_iterations):
            v = to_columns(self._v.unsqueeze(0), weight)[0]
            F.normalize(torch.mv(matrix, v), dim=0, eps=self.eps, out=self._u)
            v = from_columns(torch.mv(matrix.H, self._u).unsqueeze(0), weight)[0]
            F.normalize(v, dim=0, eps=self.eps, out=self._v)

    def vectors(self, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(u, v)`` for this call: the power iteration in training mode, then clones (the
        next call updates the buffers in place)."""
        if self.training:
            self.power_iteration(weight)
        u = self._u.clone(memory_format=torch.contiguous_format)
        v = self._v.clone(memory_format=torch.contiguous_format)
        return u, v

    def weight_and_sigma(self, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weight alias, sigma)``: sigma is ``u^T W v`` as torch's forward computes it
        before dividing; use the alias, so that sigma's gradient joins the weight's."""
        u, v = self.vectors(weight)
        if self.dim != 0:  # a transposed conv's matrix is a permuted copy, not a view
            return weight, torch.vdot(u, torch.mv(self._reshape_weight_to_matrix(weight), v))
        alias, sigma = weight_and_sigma(weight, u.unsqueeze(0), v.unsqueeze(0))
        return alias, sigma.squeeze(0)

    def forward(
        self, weight: torch.Tensor, undivided: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if weight.ndim == 1:  # torch normalises vectors without power iteration
            if undivided:
                raise ValueError("undivided is for kernels and matrices, not vectors")
            return super().forward(weight)
        alias, sigma = self.weight_and_sigma(weight)
        return (alias, sigma) if undivided else alias / sigma


def _output_numel_per_image(conv: nn.Conv2d, x: torch.Tensor) -> int:
    if conv.padding == "same":
        return conv.out_channels * x.shape[-2] * x.shape[-1]
    padding = (0, 0) if conv.padding == "valid" else conv.padding
    size = [
        (n + 2 * p - d * (k - 1) - 1) // s + 1
        for n, p, d, k, s in zip(
            x.shape[-2:], padding, conv.dilation, conv.kernel_size, conv.stride, strict=True
        )
    ]
    return conv.out_channels * size[0] * size[1]


def divides_output(module: nn.Module, name: str, output_is_smaller: bool) -> bool:
    """Whether ``module`` divides its output by the sigma of ``module.<name>`` (instead of the
    weight): where the output is smaller, unless ``parametrize.cached()`` already holds this
    weight divided (then the calls of one cached context share one power iteration, as torch's
    cached weight does)."""
    if parametrize._cache_enabled:
        if (id(module), f"{name}.sigma") in parametrize._cache:
            return True
        if (id(module), name) in parametrize._cache:
            return False
    return output_is_smaller


def weight_and_sigma_of(module: nn.Module, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight, sigma)`` of ``module.<name>``'s spectral norm, undivided, through the norm's
    module call (its power iteration in training mode); inside ``parametrize.cached()`` once per
    context, as torch computes a cached parametrized weight once. Use the returned weight (an
    alias of the original) so that sigma's gradient joins the weight's in one pass."""
    plist = module.parametrizations[name]
    if not parametrize._cache_enabled:
        return plist[0](plist.original, undivided=True)
    # torch's cache of parametrized tensors (private, keyed by module and tensor name), which
    # cached() empties on exit; read through the module, as cached() rebinds it.
    key = (id(module), f"{name}.sigma")
    pair = parametrize._cache.get(key)
    if pair is None:
        pair = parametrize._cache[key] = plist[0](plist.original, undivided=True)
    return pair


class SpectralNormConv2d(nn.Conv2d):
    """``nn.Conv2d`` under :func:`spectral_norm` that divides its output by sigma where one
    image's output is smaller than the weight (the result of ``conv(x, W / sigma)``, rounding
    aside). Per image, not per batch: a batch split into micro-batches or over DDP ranks takes
    the whole batch's path, so the splits round as the whole batch does (their tests compare
    them at 1e-7)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        plist = self.parametrizations["weight"]
        original = plist.original
        smaller = _output_numel_per_image(self, x) < original.numel()
        if len(plist) != 1 or not divides_output(self, "weight", smaller):
            return super().forward(x)
        weight, sigma = weight_and_sigma_of(self, "weight")
        y = self._conv_forward(x, weight, None)
        if self.bias is None:
            return y / sigma
        shape = (-1, 1, 1) if y.ndim == 3 else (1, -1, 1, 1)
        # In y's dtype: under autocast the conv's output is bf16/fp16, and an fp32 bias would
        # promote the sum (and every op after it) to fp32.
        return torch.addcdiv(self.bias.to(y.dtype).view(shape), y, sigma)


def spectral_norm(module: nn.Module) -> nn.Module:
    """torch's ``spectral_norm`` on ``module.weight`` (same defaults, buffers and state dict),
    with a ``Conv2d`` dividing its output instead of its weight where that is cheaper.

    Args:
        module: The layer to normalise (a plain ``nn.Conv2d`` gets the cheaper division;
            other layers torch's).

    Returns:
        ``module``, parametrized in place.
    """
    if type(module) is nn.Conv2d:
        # Before parametrizing: torch's parametrize derives its class from this one.
        module.__class__ = SpectralNormConv2d
    torch_spectral_norm(module)
    norm = module.parametrizations["weight"][0]
    norm.__class__ = SpectralNorm
    return module
