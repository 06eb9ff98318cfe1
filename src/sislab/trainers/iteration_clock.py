"""Per-epoch timing of training iterations: the epoch's first iteration against the steady state.

A trial should run at the speed of its bare training step (``sislab bench train``): what the
platform adds (data pipeline start at an epoch boundary, waits for batches, logging, host syncs)
shows as the gap between a trial's iterations and the bare step, and as a slow first iteration of
each epoch. The loop logs these figures once per epoch (``system/*``), so that every run carries
them and ``sislab bench trial`` compares them with the bare step of the same configuration.

Each iteration is also split into the training step itself (``procedure.train_step``, what the
bare step times) and the rest (the wait for the batch, the copy to the device, the finiteness
check, logging). The ratio of the two is taken within the same iterations, so a machine whose
speed drifts over the minutes of a trial does not move it; the step's wall time against the
CPU time of the thread that ran it says how long that thread was kept off a CPU meanwhile.

After its last iteration an epoch ends with work that is no iteration's: the evaluation, the
sample grid, the checkpoint (the wait for MLflow, the file, its copy into the run's storage) and
the report to Ray Train. Its time is logged apart (``system/epoch_end_s`` and its parts), with the
epoch's whole wall time, so that what a trial pays per epoch besides its iterations is seen too.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager


class IterationClock:
    """Wall time of each iteration of one epoch, from the previous iteration's end (or the
    epoch's start) to this one's; the part of it spent waiting for the batch; the part spent in
    the training step, as wall time and as the CPU time of the loop's thread."""

    def __init__(self) -> None:
        self._durations: list[float] = []
        self._waits: list[float] = []
        self._steps: list[float] = []
        self._step_cpu: list[float] = []
        self._last = time.perf_counter()
        self._step_start = (0.0, 0.0)
        self._epoch_start = self._last
        self._end_parts: dict[str, float] = {}

    def start_epoch(self) -> None:
        """Forget the previous epoch; the first iteration counts from now."""
        self._durations, self._waits, self._steps, self._step_cpu = [], [], [], []
        self._end_parts = {}
        self._last = self._epoch_start = time.perf_counter()

    def got_batch(self) -> None:
        """The iteration's batch arrived (the loop asked for it when the last iteration ended)."""
        self._waits.append(time.perf_counter() - self._last)

    def start_step(self) -> None:
        """The training step begins (the batch is on the device)."""
        self._step_start = (time.perf_counter(), time.thread_time())

    def end_step(self) -> None:
        """The training step returned (on CUDA: enqueued)."""
        wall, cpu = self._step_start
        self._steps.append(time.perf_counter() - wall)
        self._step_cpu.append(time.thread_time() - cpu)

    def end_iteration(self) -> None:
        """The iteration is done (on CUDA: enqueued; its steady state is the same)."""
        now = time.perf_counter()
        self._durations.append(now - self._last)
        self._last = now

    @contextmanager
    def epoch_end_part(self, name: str) -> Iterator[None]:
        """Time one part of the epoch's end, logged as ``system/<name>_s``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self._end_parts[name] = time.perf_counter() - start

    def epoch_end_metrics(self) -> dict[str, float]:
        """The epoch's end so far, in seconds: ``system/epoch_end_s`` (from the end of the last
        iteration, or the epoch's start when it had none, to now), its timed parts
        (``system/<name>_s``, only those that ran this epoch) and ``system/epoch_s``, the
        epoch's wall time from its start to now."""
        now = time.perf_counter()
        out = {
            "system/epoch_s": now - self._epoch_start,
            "system/epoch_end_s": now - self._last,
        }
        out.update({f"system/{name}_s": value for name, value in self._end_parts.items()})
        return out

    def metrics(self) -> dict[str, float]:
        """This epoch's figures, in seconds.

        ``system/first_iter_s``: the epoch's first iteration, its batch wait included;
        ``system/iter_s``: the median of the others (steady state; absent with one iteration);
        ``system/first_batch_wait_s`` and ``system/batch_wait_s`` (the median of the others):
        how much of them was spent waiting for data; ``system/first_step_s`` and
        ``system/step_s``: the training step alone, likewise; ``system/first_step_cpu_s`` and
        ``system/step_cpu_s``: the CPU time of the loop's thread during the step (with one
        intra-op thread, the step's whole computation on CPU; on CUDA, the host's share).
        """
        out: dict[str, float] = {}
        for first, steady, values in (
            ("system/first_iter_s", "system/iter_s", self._durations),
            ("system/first_batch_wait_s", "system/batch_wait_s", self._waits),
            ("system/first_step_s", "system/step_s", self._steps),
            ("system/first_step_cpu_s", "system/step_cpu_s", self._step_cpu),
        ):
            if values:
                out[first] = values[0]
            if len(values) > 1:
                out[steady] = statistics.median(values[1:])
        return out
