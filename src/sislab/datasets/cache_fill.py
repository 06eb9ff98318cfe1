"""Filling the decoded-rows cache: one Ray task per shard, at most one per CPU at a time.

Ray Data 2.60 budgets each execution with the resources its autoscaling coordinator has reserved
for it, and learns them through a non-blocking call that answers from a cache: empty for the
first second of every execution. With a budget of zero it runs one task at a time, so a fill that
takes about a second ran its shards one after another (7 of 8 shard tasks of a 512-row split in
one worker process, 1.4-1.8 s). The fill therefore runs its own tasks, as many at once as Ray
Data would have run (one per shard, at most the cluster's CPUs), and hands the decoded blocks to
Ray Data as a materialized dataset (``ray.data.from_arrow_refs``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa


def _decode_shard(read_and_decode: Callable[[pa.Table], Iterator[dict]], path: str):
    # A generator task: each chunk of decoded rows goes to the object store as it is made.
    from ray.data.block import BlockAccessor

    for chunk in read_and_decode(pa.table({"shard": [path]})):
        yield BlockAccessor.batch_to_block(chunk)


def decode_into_object_store(
    read_and_decode: Callable[[pa.Table], Iterator[dict]],
    shards: list[str],
    num_cpus: float,
    max_at_once: int,
) -> Any:
    """Decode every shard into the object store and return the rows as a Ray Data dataset.

    Args:
        read_and_decode: Shard path table in, decoded row chunks out (``pipeline``'s UDF).
        shards: Shard paths, in the split's order (the dataset keeps it).
        num_cpus: CPUs each task reserves (``dataset.read_cpus``).
        max_at_once: Tasks running at once.

    Returns:
        A ``MaterializedDataset`` of the decoded rows, one block per chunk.

    Raises:
        The first task's error (a ``DataError`` for a corrupt shard under ``on_corrupt: error``).
    """
    import ray
    import ray.data

    # SPREAD, as Ray Data schedules its tasks: over the nodes, and never inside the placement
    # group of the trial whose driver calls this (Tune's groups capture their child tasks).
    task = ray.remote(num_cpus=num_cpus, num_returns="streaming", scheduling_strategy="SPREAD")(
        _decode_shard
    )
    generators: list[Any] = []
    running: list[ray.ObjectRef] = []
    for path in shards:
        if len(running) >= max_at_once:
            _, running = ray.wait(running, num_returns=1)
        generators.append(task.remote(read_and_decode, path))
        running.append(generators[-1].completed())
    ray.get([g.completed() for g in generators])  # raises the first task error
    return ray.data.from_arrow_refs([ref for g in generators for ref in g])
