"""Test hooks for DDP-equivalence tests: identical noise in the 1-rank and 2-rank set-ups.

A method draws its noise (z, VAE reparameterisation, semantic noise, LabelMix bits) with
``torch.randn``/``rand``/``randn_like``/``randint`` deep inside its models. To compare one step on
2 ranks x batch B with one step on 1 rank x batch 2B, ``SharedNoise`` replaces these four
functions for the duration of a step: the k-th draw of the step comes from a generator seeded by
k, drawn at the global batch size, and each rank keeps its own rows of it (rank r: rows
``r*B .. (r+1)*B``), so the two set-ups see the same noise sample for sample. A draw whose first
dimension is not the batch (LabelMix's one bit per class) is the same on every rank.
``RecordedNoise`` leaves the draws alone and keeps them, to compare ranks in normal training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

PATCHED = ("randn", "rand", "randn_like", "randint")


def _shape(size: Sequence[Any]) -> tuple[int, ...]:
    """``randn(2, 3)`` and ``randn((2, 3))`` both give (2, 3)."""
    if len(size) == 1 and isinstance(size[0], Sequence | torch.Size):
        return tuple(int(s) for s in size[0])
    return tuple(int(s) for s in size)


class _Patch:
    """Swaps the four torch functions for ``self._draw`` while active."""

    def __enter__(self):
        self._originals = {name: getattr(torch, name) for name in PATCHED}
        original = self._originals

        def randn(*size, dtype=None, device=None, generator=None, **_):
            return self._draw(original["randn"], _shape(size), dtype, device, generator)

        def rand(*size, dtype=None, device=None, generator=None, **_):
            return self._draw(original["rand"], _shape(size), dtype, device, generator)

        def randn_like(tensor, dtype=None, device=None, **_):
            dtype, device = dtype or tensor.dtype, device or tensor.device
            return self._draw(original["randn"], tuple(tensor.shape), dtype, device, None)

        def randint(*args, size=None, dtype=None, device=None, generator=None, **_):
            *bounds, last = args if size is None else (*args, size)
            low, high = (0, bounds[0]) if len(bounds) == 1 else bounds

            def draw(*shape, generator=None, dtype=None, device=None):
                return original["randint"](low, high, shape, generator=generator, device=device)

            return self._draw(draw, _shape([last]), dtype or torch.int64, device, generator)

        for name, function in zip(PATCHED, (randn, rand, randn_like, randint), strict=True):
            setattr(torch, name, function)
        return self

    def __exit__(self, *exc) -> None:
        for name, function in self._originals.items():
            setattr(torch, name, function)

    def _draw(self, function, shape, dtype, device, generator):
        raise NotImplementedError


class SharedNoise(_Patch):
    """Noise that is the same sample for sample in the 1-rank and the W-rank set-up.

    Args:
        rank: This process's rank (0 in the 1-rank reference).
        world_size: Ranks sharing the global batch (1 in the reference).
        local_batch: This rank's batch size (the global one in the reference).
        seed: Base seed of the draws.
    """

    def __init__(self, rank: int, world_size: int, local_batch: int, seed: int = 0) -> None:
        self.rank, self.world_size, self.local_batch, self.seed = (
            rank,
            world_size,
            local_batch,
            seed,
        )
        self.calls = 0

    def _draw(self, function, shape, dtype, device, generator):
        del generator  # the draw's seed is the call's index
        self.calls += 1
        seeded = torch.Generator().manual_seed(self.seed * 100_003 + self.calls)
        batched = bool(shape) and shape[0] == self.local_batch
        full = (shape[0] * self.world_size, *shape[1:]) if batched else shape
        values = function(*full, generator=seeded)
        if batched:
            values = values[self.rank * self.local_batch : (self.rank + 1) * self.local_batch]
        return values.to(device=device or "cpu", dtype=dtype or values.dtype)


class RecordedNoise(_Patch):
    """The process's own draws, unchanged, kept in ``self.draws``."""

    def __init__(self) -> None:
        self.draws: list[torch.Tensor] = []

    def _draw(self, function, shape, dtype, device, generator):
        values = function(*shape, generator=generator, dtype=dtype, device=device)
        self.draws.append(values.detach().clone())
        return values


class MicroBatchNoise(SharedNoise):
    """``SharedNoise`` for gradient accumulation: the same noise for k micro-batches of B as for
    one pass over kB (on each of W ranks).

    A step runs each side (G, D) over the micro-batches; ``watch`` wraps the procedure's
    ``generator_losses``/``discriminator_losses`` so that every call starts a micro-batch: the
    draws restart their count per side, and micro-batch i of rank r keeps the rows of virtual
    rank ``r * k + i`` of draws made at the global batch size. With k = 1 this is the reference.

    Args:
        rank: This process's rank.
        world_size: Ranks.
        accumulation: Micro-batches per step (k).
        micro_batch: Rows per micro-batch (B).
        seed: Base seed of the step's draws.
    """

    def __init__(
        self, rank: int, world_size: int, accumulation: int, micro_batch: int, seed: int
    ) -> None:
        super().__init__(rank * accumulation, world_size * accumulation, micro_batch, seed)
        self.base_rank, self.accumulation, self.base_seed = rank * accumulation, accumulation, seed
        self.side_calls = {"g": 0, "d": 0}
        self.starts: list[tuple[str, int]] = []  # (side, micro-batch index) of every call

    def begin(self, side: str) -> None:
        """A micro-batch of ``side`` starts: the next virtual rank, the side's own draw count."""
        index = self.side_calls[side] % self.accumulation
        self.side_calls[side] += 1
        self.starts.append((side, index))
        self.rank, self.calls = self.base_rank + index, 0
        self.seed = self.base_seed * 2 + (side == "d")

    def watch(self, procedure) -> None:
        """Wrap the procedure's loss functions (instance attributes, as StepGuard does)."""
        for side, name in (("g", "generator_losses"), ("d", "discriminator_losses")):
            compute = getattr(type(procedure), name).__get__(procedure)

            def losses(batch, semantics, side=side, compute=compute):
                self.begin(side)
                return compute(batch, semantics)

            setattr(procedure, name, losses)
