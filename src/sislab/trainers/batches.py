"""Batches for the training loop: the interface, and in-process synthetic batches.

Batch contract: ``image`` float32 (B, 3, H, W) in [-1, 1], ``label`` int64 (B, 1, H, W) class ids,
``instance`` int64 (B, 1, H, W) when the dataset has instance maps.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from sislab.datasets.synthetic import SyntheticParams


class EpochSource(Protocol):
    """Where a worker's batches come from.

    Attributes:
        skipped_rows: Corrupt rows dropped in the last epoch (``dataset.on_corrupt: skip``),
            logged to MLflow as ``data/skipped_rows`` summed over ranks.
    """

    skipped_rows: int

    def batches(self, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
        """This rank's batches of one epoch; every rank yields the same number."""
        ...

    def grid_batch(self, num: int) -> dict[str, torch.Tensor]:
        """The same ``num`` validation samples every time, for sample grids."""
        ...

    def eval_batches(
        self, num: int | None, batch_size: int, rank: int, world_size: int
    ) -> Iterator[dict[str, torch.Tensor]]:
        """This rank's share of the first ``num`` val rows (all when None): row i on rank
        ``i % world_size``, in order, unaugmented; the same rows at every evaluation."""
        ...

    def close(self) -> None:
        """Stop whatever makes batches ahead of their use (the trial ends)."""
        ...


def _to_batch(samples: list[tuple[np.ndarray, np.ndarray]], size: tuple[int, int]) -> dict:
    images = torch.from_numpy(np.stack([s[0] for s in samples])).permute(0, 3, 1, 2).float()
    labels = torch.from_numpy(np.stack([s[1] for s in samples]).astype(np.int64))[:, None]
    if tuple(images.shape[-2:]) != tuple(size):
        # SPADE code: images bicubic, labels nearest.
        images = F.interpolate(images, size=size, mode="bicubic", align_corners=False)
        labels = F.interpolate(labels.float(), size=size, mode="nearest").long()
    return {"image": (images / 127.5 - 1.0).clamp(-1, 1), "label": labels}


class SyntheticSource:
    """Synthetic layouts rendered inside the worker, sharded by rank, shuffled per epoch by seed.

    Args:
        params: Parsed ``synthetic://`` URI.
        image_size: Output (H, W).
        batch_size: Per-worker batch size.
        rank: This worker's rank.
        world_size: Number of workers.
        seed: Seed of the per-epoch permutation.
        flip: Random horizontal flips.
        max_batches: Cap on batches per epoch.
    """

    def __init__(
        self,
        params: SyntheticParams,
        image_size: tuple[int, int],
        batch_size: int,
        rank: int,
        world_size: int,
        seed: int,
        flip: bool,
        max_batches: int | None = None,
    ) -> None:
        self.params = params
        self.image_size = image_size
        self.batch_size = batch_size
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        self.flip = flip
        self.skipped_rows = 0  # rendered rows cannot be corrupt
        per_rank = params.num // world_size
        self.num_batches = per_rank // batch_size
        if max_batches is not None:
            self.num_batches = min(self.num_batches, max_batches)

    def _render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.params.render(index)

    def batches(self, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(self.params.num)
        # Equal shards, remainder dropped: every rank must report equally often.
        mine = order[: (self.params.num // self.world_size) * self.world_size][
            self.rank :: self.world_size
        ]
        flip_rng = np.random.default_rng([self.seed, epoch, self.rank])
        for b in range(self.num_batches):
            indices = mine[b * self.batch_size : (b + 1) * self.batch_size]
            batch = _to_batch([self._render(int(i)) for i in indices], self.image_size)
            if self.flip:
                flips = torch.from_numpy(flip_rng.random(len(indices)) < 0.5)
                for key in ("image", "label"):
                    batch[key][flips] = batch[key][flips].flip(-1)
            yield batch

    def grid_batch(self, num: int) -> dict[str, torch.Tensor]:
        # Validation rows follow the training rows, as in `sislab data synth`.
        indices = [self.params.num + i for i in range(min(num, max(self.params.val, 1)))]
        return _to_batch([self._render(i) for i in indices], self.image_size)

    def eval_batches(
        self, num: int | None, batch_size: int, rank: int, world_size: int
    ) -> Iterator[dict[str, torch.Tensor]]:
        total = self.params.val if num is None else min(num, self.params.val)
        mine = [self.params.num + i for i in range(rank, total, world_size)]
        for start in range(0, len(mine), batch_size):
            indices = mine[start : start + batch_size]
            yield _to_batch([self._render(i) for i in indices], self.image_size)

    def close(self) -> None:
        """Nothing to stop: batches are rendered when asked for."""
