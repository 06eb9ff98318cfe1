"""Spectral norm's power iteration kept out of ``torch.compile``, for networks called several
times before one backward (OASIS's discriminator: fake, real and LabelMix in its D step).

torch's spectral norm updates its ``u`` and ``v`` buffers in place at every training-mode call
and normalises the weight with clones of them, so that an earlier call's backward still finds
the values it used. Compiled with inductor (``aot_eager`` does not show it), the graph saves the
buffers themselves instead of the clones, and the backward fails on the next call's update
("modified by an inplace operation", pytorch#185497).

``power_iterations_outside_graph`` moves the update into a forward pre-hook that runs eagerly,
the same in-place power iteration on the same buffers (state dicts and DDP's broadcast of u and v
unchanged), and hands the compiled graph fresh clones through two non-persistent buffers that
are replaced at every call. (DDP also broadcasts rank 0's clones into the current ones before
each forward, version counters preserved; their values are the same on every rank, which runs the
same iteration on the u, v and weights DDP keeps equal.) Same operations, same order: eager
results are bit-for-bit torch's.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

# torch's parametrization class (private), and sislab's, which asks it for sigma.
from torch.nn.utils.parametrizations import _SpectralNorm

from sislab.models.convs.spectral_norm import SpectralNorm


class _SpectralNormFromClones(SpectralNorm):
    """torch's spectral norm with the power iteration done by the pre-hook (``_refresh``)."""

    def vectors(self, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        del weight  # the pre-hook iterated and cloned
        return self._u_now, self._v_now


def _refresh(plist: parametrize.ParametrizationList, norm: _SpectralNormFromClones) -> None:
    if norm.training:
        norm.power_iteration(plist.original)
    # New tensors, so that what an earlier call saved for its backward is never overwritten.
    norm._u_now = norm._u.clone(memory_format=torch.contiguous_format)
    norm._v_now = norm._v.clone(memory_format=torch.contiguous_format)


def power_iterations_outside_graph(module: nn.Module) -> int:
    """Make ``module``'s spectral norms (torch's parametrization, on matrices and kernels) take
    their power iteration in an eager forward pre-hook; call before compiling ``module``.

    Returns:
        How many spectral norms were changed.
    """
    pairs = []
    for sub in module.modules():
        if not parametrize.is_parametrized(sub):
            continue
        for plist in sub.parametrizations.values():
            # Only a lone torch spectral norm (its input is the original weight) on a matrix or
            # kernel: vectors are normalised without power iteration.
            if (
                len(plist) != 1
                or type(plist[0]) not in (_SpectralNorm, SpectralNorm)
                or plist.original.ndim == 1
            ):
                continue
            norm = plist[0]
            norm.__class__ = _SpectralNormFromClones
            norm.register_buffer("_u_now", norm._u.clone(), persistent=False)
            norm.register_buffer("_v_now", norm._v.clone(), persistent=False)
            pairs.append((plist, norm))

    @torch.compiler.disable
    def refresh_all(_module: nn.Module, _args) -> None:
        for plist, norm in pairs:
            _refresh(plist, norm)

    if pairs:
        module.register_forward_pre_hook(refresh_all)
    return len(pairs)
