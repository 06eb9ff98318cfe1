"""Worker side of the data pipeline: one epoch of model-ready batches from a dataset shard.

The random crop and flip run here, not in Ray Data's ``map_batches``: a Ray Data task does not
know the epoch, so a seeded crop there would repeat every epoch. Each row carries its target size
and whether it may be flipped (``out_hw``, ``flip``), and the crop and flip are drawn from
``(seed, epoch, key)``, so they are reproducible whatever worker a row lands on.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

from sislab.datasets.preprocess import Preprocess, normalise_into
from sislab.errors import DataError

log = logging.getLogger(__name__)


def _rng(seed: int, epoch: int, key: str) -> np.random.Generator:
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return np.random.default_rng([seed, epoch, int.from_bytes(digest, "little")])


def _world_rank() -> int:
    # A Train worker has imported ray.train before it runs the loop; anywhere else (a bench, a
    # driver) importing it only to learn rank 0 would cost ~0.4 s of imports.
    if "ray.train" not in sys.modules:
        return 0
    try:
        import ray.train

        return ray.train.get_context().get_world_rank()
    except Exception:  # not inside a Train worker
        return 0


class EpochBatches(Iterator[dict]):
    """One epoch of model-ready batches from a worker's dataset shard.

    Attributes:
        skipped_rows: Corrupt rows dropped so far (``on_corrupt: skip``); the trainer logs it.
        recycled_rows: Rows repeated to reach ``num_batches`` after skips (0 without skips).
    """

    def __init__(
        self,
        source: Iterator[dict],
        *,
        epoch: int,
        batch_size: int,
        seed: int,
        drop_last: bool,
        num_batches: int | None,
    ) -> None:
        self.skipped_rows = 0
        self.recycled_rows = 0
        self._gen = self._batches(source, epoch, batch_size, seed, drop_last, num_batches)

    def __next__(self) -> dict:
        return next(self._gen)

    def _rows(self, source: Iterator[dict], epoch: int, seed: int) -> Iterator[tuple]:
        for batch in source:
            for i in range(len(batch["key"])):
                if not batch["valid"][i]:
                    self.skipped_rows += 1
                    continue
                key = str(batch["key"][i])
                inst = batch["instance"][i] if "instance" in batch else None
                pre = Preprocess(
                    "fixed",
                    tuple(int(v) for v in batch["out_hw"][i]),
                    None,
                    True,
                    bool(batch["flip"][i]),
                )
                image, label, inst = pre.crop_flip(
                    batch["image"][i], batch["label"][i], inst, _rng(seed, epoch, key)
                )
                yield key, image, label, inst

    def _batches(self, source, epoch, batch_size, seed, drop_last, num_batches):
        pending: list[tuple] = []
        seen: list[tuple] = []
        emitted = 0
        for row in self._rows(source, epoch, seed):
            pending.append(row)
            if len(pending) == batch_size:
                seen, pending = pending, []
                yield _collate(seen)
                emitted += 1
                if num_batches is not None and emitted == num_batches:
                    return
        if num_batches is not None:
            # Every DDP rank must run the same number of steps, or the collective ops hang: after
            # skipped rows, top the epoch up with rows of this epoch instead of stopping early.
            pool = pending + seen
            if emitted < num_batches and not pool:
                raise DataError("a worker received no valid rows this epoch")
            while emitted < num_batches:
                need = batch_size - len(pending)
                filler = [pool[j % len(pool)] for j in range(need)]
                self.recycled_rows += need
                log.warning("recycling %d rows to keep %d batches this epoch", need, num_batches)
                yield _collate(pending + filler)
                pending, emitted = [], emitted + 1
        elif pending and not drop_last:
            yield _collate(pending)


def _collate(rows: list[tuple]) -> dict:
    import torch

    # Each row (a cropped, flipped view of a Ray Data block) is written once, straight into the
    # batch arrays in the model's dtype: no stacked uint8 copy in between.
    h, w = rows[0][2].shape
    image = np.empty((len(rows), 3, h, w), np.float32)
    label = np.empty((len(rows), 1, h, w), np.int64)
    inst = np.empty((len(rows), 1, h, w), np.int64) if rows[0][3] is not None else None
    for i, (_, img, lab, ins) in enumerate(rows):
        normalise_into(img, image[i])
        label[i, 0] = lab
        if inst is not None:
            inst[i, 0] = ins
    out = {"image": torch.from_numpy(image), "label": torch.from_numpy(label)}
    if inst is not None:
        out["instance"] = torch.from_numpy(inst)
    out["key"] = [r[0] for r in rows]
    return out


def iter_epoch_batches(
    shard: Any,
    *,
    epoch: int,
    batch_size: int,
    seed: int,
    shuffle_buffer: int = 256,
    drop_last: bool = True,
    num_batches: int | None = None,
    rank: int | None = None,
) -> EpochBatches:
    """Batches of one epoch on a Train worker.

    Args:
        shard: ``ray.train.get_dataset_shard(name)`` (or any Ray ``Dataset``).
        epoch: Epoch number; the shuffle, crops and flips change with it.
        batch_size: Per-worker batch size.
        seed: Run seed.
        shuffle_buffer: Rows of the local shuffle buffer (0: no shuffle, e.g. for evaluation);
            with a buffer, the shard's blocks also come in a new order every epoch
            (``EpochBlockOrder``).
        drop_last: Drop the last incomplete batch (SPADE: drop_last at train time).
        num_batches: Yield exactly this many batches (all ranks equal even after skipped rows).
        rank: This worker's rank, for the shuffle seed (None: asked of Ray Train, which answers
            only on the worker's training thread).

    Returns:
        An iterator of ``{"image": float32 (B,3,H,W) in [-1,1], "label": int64 (B,1,H,W),
        "instance": int64 (B,1,H,W) (only when the dataset has instance maps), "key": list[str]}``
        with a ``skipped_rows`` count.
    """
    rank = _world_rank() if rank is None else rank
    if shuffle_buffer:
        from sislab.datasets.block_order import EpochBlockOrder

        shard = EpochBlockOrder(shard, seed=seed, epoch=epoch, rank=rank)
    source = shard.iter_batches(
        batch_size=min(batch_size, 64),
        batch_format="numpy",
        local_shuffle_buffer_size=shuffle_buffer or None,
        local_shuffle_seed=(seed * 1_000_003 + epoch * 1_009 + rank) % 2**31
        if shuffle_buffer
        else None,
    )
    return EpochBatches(
        iter(source),
        epoch=epoch,
        batch_size=batch_size,
        seed=seed,
        drop_last=drop_last,
        num_batches=num_batches,
    )
