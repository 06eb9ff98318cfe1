"""Batches made ahead in a background thread, across epoch boundaries.

A Ray Data epoch starts a new streaming execution (read tasks, decode, the worker's shuffle
buffer): seconds before its first batch, which the trainer used to wait for at every epoch's first
iteration. ``EpochPrefetcher`` runs each epoch's batch iterator in one background thread a few
batches ahead of the training step, and opens the next epoch's iterator as soon as the current
one has produced its last batch, so the next epoch's start overlaps the end of this one (its last
steps, the evaluation, the checkpoint).

Only batch production runs in the thread: whatever is collective (a reduction over ranks) or
writes records stays with the caller, on the training thread. Batches and their order are those
of the wrapped iterators: what an epoch draws depends on ``(seed, epoch)``, not on timing.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_END = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class EpochPrefetcher(Generic[T]):
    """Produce epochs ``first, first + 1, ...`` of ``open_epoch(epoch)`` ahead of their use.

    Args:
        open_epoch: Called in the background thread with an epoch number; returns that epoch's
            iterator (its ``skipped_rows``-like state can be read with ``opened(epoch)``).
        num_epochs: Epochs in all: none is opened past ``num_epochs - 1``.
        depth: Batches held ready per epoch.
    """

    def __init__(self, open_epoch: Callable[[int], Iterator[T]], num_epochs: int, depth: int = 2):
        self._open = open_epoch
        self._num_epochs = num_epochs
        self._depth = depth
        self._queues: dict[int, queue.Queue] = {}
        self._iterators: dict[int, Iterator[T]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def epoch(self, epoch: int) -> Iterator[T]:
        """The batches of ``epoch``, made ahead; the epochs must be asked for in order."""
        with self._lock:
            started = epoch in self._queues and not self._stop.is_set()
        if not started:
            self._wait_idle()  # a producer of another epoch (asked out of order) finishes first
            self._start(epoch)
        q = self._queues[epoch]
        finished = False
        try:
            while True:
                item = q.get()
                if item is _END:
                    finished = True
                    break
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            if not finished:  # abandoned or failed: make nothing more
                self.close()
        with self._lock:
            self._queues.pop(epoch, None)

    def opened(self, epoch: int) -> Iterator[T] | None:
        """The iterator ``open_epoch`` returned for ``epoch`` (None before it is opened)."""
        return self._iterators.get(epoch)

    def close(self) -> None:
        """Stop producing (a batch being made is finished first; nothing more is opened)."""
        self._stop.set()
        for q in list(self._queues.values()):
            while not q.empty():  # unblock a producer waiting for room
                q.get_nowait()

    def _start(self, epoch: int) -> None:
        with self._lock:
            self._queues[epoch] = queue.Queue(self._depth)
        self._thread = threading.Thread(
            target=self._produce, args=(epoch,), name=f"sislab-prefetch-{epoch}", daemon=True
        )
        self._thread.start()

    def _wait_idle(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self.close()
            self._thread.join()
        self._stop.clear()
        with self._lock:
            self._queues.clear()

    def _produce(self, epoch: int) -> None:
        # One thread walks the epochs in order: epoch e + 1 is opened when e has been produced.
        while not self._stop.is_set():
            q = self._queues[epoch]
            try:
                iterator = self._open(epoch)
                self._iterators[epoch] = iterator
                self._iterators.pop(epoch - 2, None)  # the caller reads the last one's state
                for item in iterator:
                    if self._put(q, item):
                        return
            except BaseException as error:  # handed to the training thread, which raises it
                self._put(q, _Failure(error))
                return
            following = epoch + 1 if epoch + 1 < self._num_epochs else None
            if following is not None:
                with self._lock:  # before the end marker: the caller finds it when asking next
                    self._queues[following] = queue.Queue(self._depth)
            if self._put(q, _END) or following is None:
                return
            epoch = following

    def _put(self, q: queue.Queue, item) -> bool:
        """Put ``item`` when there is room; True if told to stop meanwhile."""
        while not self._stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return False
            except queue.Full:
                continue
        return True
