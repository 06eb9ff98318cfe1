"""Batches made ahead across epoch boundaries: same batches, same order, errors passed on."""

from __future__ import annotations

import threading

import pytest

from sislab.datasets.prefetch import EpochPrefetcher


class Epochs:
    """Epoch ``e`` yields ``(e, 0), (e, 1), ...``; records which epochs were opened."""

    def __init__(self, per_epoch: int, fail_at: tuple[int, int] | None = None) -> None:
        self.per_epoch = per_epoch
        self.fail_at = fail_at
        self.opened: list[int] = []
        self.events = {e: threading.Event() for e in range(10)}

    def __call__(self, epoch: int):
        self.opened.append(epoch)
        self.events[epoch].set()
        for i in range(self.per_epoch):
            if (epoch, i) == self.fail_at:
                raise OSError(f"shard unreadable at epoch {epoch}, batch {i}")
            yield (epoch, i)


def test_each_epoch_yields_its_batches_in_order_and_none_past_the_last() -> None:
    source = Epochs(per_epoch=5)
    prefetcher = EpochPrefetcher(source, num_epochs=3)
    seen = [list(prefetcher.epoch(e)) for e in range(3)]
    assert seen == [[(e, i) for i in range(5)] for e in range(3)]
    assert source.opened == [0, 1, 2]


def test_the_next_epoch_opens_before_it_is_asked_for() -> None:
    source = Epochs(per_epoch=3)
    prefetcher = EpochPrefetcher(source, num_epochs=2)
    assert list(prefetcher.epoch(0)) == [(0, 0), (0, 1), (0, 2)]
    # Epoch 1 was opened by the background thread, not by this call: its first batches are
    # made while the trainer finishes epoch 0 (evaluation, checkpoint).
    assert source.events[1].wait(timeout=30)
    assert list(prefetcher.epoch(1)) == [(1, 0), (1, 1), (1, 2)]
    assert source.opened == [0, 1]


def test_a_resumed_run_starts_at_its_epoch() -> None:
    source = Epochs(per_epoch=2)
    prefetcher = EpochPrefetcher(source, num_epochs=4)
    assert [list(prefetcher.epoch(e)) for e in (2, 3)] == [[(2, 0), (2, 1)], [(3, 0), (3, 1)]]
    assert source.opened == [2, 3]


def test_an_error_while_making_batches_is_raised_on_the_training_thread() -> None:
    source = Epochs(per_epoch=4, fail_at=(1, 2))
    prefetcher = EpochPrefetcher(source, num_epochs=3)
    assert len(list(prefetcher.epoch(0))) == 4
    batches = prefetcher.epoch(1)
    assert [next(batches), next(batches)] == [(1, 0), (1, 1)]
    with pytest.raises(OSError, match="epoch 1, batch 2"):
        next(batches)
    assert source.opened == [0, 1]


def test_an_abandoned_epoch_stops_the_producer() -> None:
    source = Epochs(per_epoch=50)
    prefetcher = EpochPrefetcher(source, num_epochs=3)
    batches = prefetcher.epoch(0)
    assert next(batches) == (0, 0)
    batches.close()
    prefetcher._thread.join(timeout=30)
    assert not prefetcher._thread.is_alive()
    assert source.opened == [0]
    # Asked again, it starts afresh at the epoch asked for.
    assert list(prefetcher.epoch(1))[:2] == [(1, 0), (1, 1)]


def test_opened_gives_the_epoch_iterator_for_its_state() -> None:
    prefetcher = EpochPrefetcher(lambda e: iter([e] * 3), num_epochs=2)
    assert list(prefetcher.epoch(0)) == [0, 0, 0]
    assert list(prefetcher.opened(0)) == []  # the same, exhausted iterator
    prefetcher.close()
