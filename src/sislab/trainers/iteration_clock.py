"""Per-epoch timing of training iterations: the epoch's first iteration against the steady state.

A trial should run at the speed of its bare training step (``sislab bench train``): what the
platform adds (data pipeline start at an epoch boundary, waits for batches, logging, host syncs)
shows as the gap between a trial's iterations and the bare step, and as a slow first iteration of
each epoch. The loop logs these figures once per epoch (``system/*``), so that every run carries
them and ``sislab bench trial`` compares them with the bare step of the same configuration.
"""

from __future__ import annotations

import statistics
import time


class IterationClock:
    """Wall time of each iteration of one epoch, from the previous iteration's end (or the
    epoch's start) to this one's, and the part of it spent waiting for the batch."""

    def __init__(self) -> None:
        self._durations: list[float] = []
        self._waits: list[float] = []
        self._last = time.perf_counter()

    def start_epoch(self) -> None:
        """Forget the previous epoch; the first iteration counts from now."""
        self._durations, self._waits = [], []
        self._last = time.perf_counter()

    def got_batch(self) -> None:
        """The iteration's batch arrived (the loop asked for it when the last iteration ended)."""
        self._waits.append(time.perf_counter() - self._last)

    def end_iteration(self) -> None:
        """The iteration's step is done (on CUDA: enqueued; its steady state is the same)."""
        now = time.perf_counter()
        self._durations.append(now - self._last)
        self._last = now

    def metrics(self) -> dict[str, float]:
        """This epoch's figures, in seconds.

        ``system/first_iter_s``: the epoch's first iteration, its batch wait included;
        ``system/iter_s``: the median of the others (steady state; absent with one iteration);
        ``system/first_batch_wait_s`` and ``system/batch_wait_s`` (the median of the others):
        how much of them was spent waiting for data.
        """
        if not self._durations:
            return {}
        out = {"system/first_iter_s": self._durations[0]}
        if self._waits:
            out["system/first_batch_wait_s"] = self._waits[0]
        if len(self._durations) > 1:
            out["system/iter_s"] = statistics.median(self._durations[1:])
        if len(self._waits) > 1:
            out["system/batch_wait_s"] = statistics.median(self._waits[1:])
        return out
