"""A new block order every epoch, drawn on the worker from ``(seed, epoch, rank)``.

The train split's ``randomize_block_order`` draws one order per run, and a worker's local
shuffle buffer only mixes rows a buffer apart, so epochs kept nearly the same order (positions in
consecutive epochs correlated 0.96 over 512 rows with 32 rows of buffer). Ray Data's
per-execution reseeding (``RandomSeedConfig(reseed_after_execution=True)``) is not the epoch: it
counts the executions of the dataset object in the process that runs them (Ray Train's split
coordinator), which begins again at 0 when a trial resumes from a checkpoint, so a resumed run
would repeat its first epochs' orders.

``EpochBlockOrder`` takes every block reference of the worker's epoch from the wrapped iterator
first (references only: the blocks stay in the object store, and the split's
``randomize_block_order`` has already waited for all of them), permutes them with a generator
seeded by ``(seed, epoch, rank)``, then hands them to Ray Data's batching and local shuffle as
usual. An epoch's order is then a function of the run's seed and the epoch number, as a
``DataLoader`` with a seeded sampler draws it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from ray.data import DataIterator, Dataset
from ray.data.context import DataContext

# Keeps this generator's stream apart from the local shuffle's and the crops' (same seed parts).
_STREAM = 0xB10C


class EpochBlockOrder(DataIterator):
    """``inner``'s blocks for one epoch, in an order drawn from ``(seed, epoch, rank)``."""

    def __init__(self, inner: DataIterator | Dataset, *, seed: int, epoch: int, rank: int):
        self._inner = inner.iterator() if isinstance(inner, Dataset) else inner
        self._rng_seed = [seed, epoch, rank, _STREAM]

    def _to_ref_bundle_iterator(self) -> tuple[Iterator[Any], Any, Any]:
        bundles, stats, executor = self._inner._to_ref_bundle_iterator()
        held = list(bundles)
        order = np.random.default_rng(self._rng_seed).permutation(len(held))
        return iter([held[i] for i in order]), stats, executor

    def _on_iteration_end(self, executor: Any) -> None:
        self._inner._on_iteration_end(executor)

    def _get_dataset_tag(self) -> dict[str, str | None]:
        return self._inner._get_dataset_tag()

    def stats(self) -> str:
        """Ray Data's execution stats of the wrapped iterator."""
        return self._inner.stats()

    def schema(self) -> Any:
        """The wrapped iterator's schema."""
        return self._inner.schema()

    def get_context(self) -> DataContext:
        """The wrapped iterator's Ray Data context (its ``preserve_order`` and the like)."""
        return self._inner.get_context()
