"""Gradient accumulation that matches one pass over the whole batch (docs/batch.md).

A side's step (G or D) runs its losses on k equal micro-batches, backpropagates each scaled by
1/k (every loss is a mean over the batch; the KL sum is scaled by k where it is computed) and
steps the optimiser once. Two things would still differ from one pass over the whole batch:

- DDP would all-reduce the gradients after every micro-batch: ``no_sync`` skips it on all but
  the last one, whose all-reduce carries the accumulated gradients.
- Spectral norm (torch's, and SC-GAN's per-candidate one) advances its power iteration in every
  training-mode forward, so k micro-batches would take k iterations where one pass takes one.
  ``PowerIterationReplay`` lets the first micro-batch iterate and gives the others the (u, v)
  the first one had at the same call, without iterating: a procedure that calls a network several times per step (OASIS's D:
  fake, real, LabelMix) keeps the sequence of sigma estimates of one pass.

Batch-norm statistics stay per micro-batch, as in every framework.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils.parametrizations import _SpectralNorm

from sislab.models.convs.grouped_spectral_norm import GroupedSpectralNorm

# The parametrizations that advance a power iteration (buffers _u, _v) in training-mode forwards.
POWER_ITERATIONS = (_SpectralNorm, GroupedSpectralNorm)


def micro_batches(batch: dict[str, torch.Tensor], num: int) -> list[dict[str, torch.Tensor]]:
    """``batch`` cut into ``num`` equal micro-batches along the first dimension (in order).

    Raises:
        ValueError: The batch does not split evenly (the spec check prevents it).
    """
    rows = next(iter(batch.values())).shape[0]
    if rows % num:
        raise ValueError(f"a batch of {rows} does not split into {num} equal micro-batches")
    if num == 1:
        return [batch]
    size = rows // num
    return [{k: v[i * size : (i + 1) * size] for k, v in batch.items()} for i in range(num)]


def no_sync(modules: list[nn.Module | None], skip: bool) -> contextlib.ExitStack:
    """DDP's ``no_sync`` on every DDP module of ``modules`` when ``skip`` (else nothing)."""
    stack = contextlib.ExitStack()
    if skip:
        for module in modules:
            if isinstance(module, DistributedDataParallel):
                stack.enter_context(module.no_sync())
    return stack


class PowerIterationReplay:
    """One spectral-norm power iteration per optimiser step over k micro-batches.

    Args:
        modules: The networks whose ``spectral_norm`` parametrizations are covered.
    """

    def __init__(self, modules: list[nn.Module | None]) -> None:
        self.norms = [
            m for module in modules if module is not None for m in module.modules()
            if isinstance(m, POWER_ITERATIONS)
        ]  # fmt: skip

    @contextlib.contextmanager
    def micro_batch(self, index: int) -> Iterator[None]:
        """Record (index 0) or replay (later indices) the power-iteration states of one pass."""
        if not self.norms:
            yield
            return
        if index == 0:
            self._states: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {
                id(n): [] for n in self.norms
            }
        calls = dict.fromkeys(self._states, 0)

        def record(norm, args, output) -> None:
            del args, output
            self._states[id(norm)].append((norm._u.clone(), norm._v.clone()))

        def replay(norm, args) -> None:
            del args
            u, v = self._states[id(norm)][calls[id(norm)]]
            calls[id(norm)] += 1
            with torch.no_grad():
                norm._u.copy_(u)
                norm._v.copy_(v)

        # Replayed calls run the parametrization in eval mode: sigma from the copied (u, v),
        # no iteration. Only the norms' own mode changes; BN and dropout stay in training mode.
        modes = [(n, n.training) for n in self.norms]
        if index == 0:
            handles = [n.register_forward_hook(record) for n in self.norms]
        else:
            handles = [n.register_forward_pre_hook(replay) for n in self.norms]
            for norm in self.norms:
                norm.training = False
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()
            for norm, mode in modes:
                norm.training = mode
            if index > 0:
                self._restore_last()

    def _restore_last(self) -> None:
        """Leave every norm at the (u, v) its last call of the first micro-batch produced."""
        with torch.no_grad():
            for norm in self.norms:
                states = self._states[id(norm)]
                if states:
                    norm._u.copy_(states[-1][0])
                    norm._v.copy_(states[-1][1])
