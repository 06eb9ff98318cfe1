"""In-process synthetic batches (the sweeps' ``synthetic://`` path): how ranks split an epoch."""

from __future__ import annotations

import pytest
import torch

from sislab.datasets.synthetic import parse_synthetic_uri
from sislab.trainers.batches import SyntheticSource, _to_batch

URI = "synthetic://shapes?size=16&classes=4&num=12&val=2&seed=1"


def _rows_seen(rank: int, world_size: int, epoch: int, batch_size: int) -> list[int]:
    """Which dataset rows a rank's batches of one epoch hold, found by their rendered images."""
    params = parse_synthetic_uri(URI)
    rendered = [_to_batch([params.render(i)], (16, 16))["image"][0] for i in range(params.num)]
    source = SyntheticSource(params, (16, 16), batch_size, rank, world_size, seed=0, flip=False)
    seen = []
    for batch in source.batches(epoch):
        for image in batch["image"]:
            matches = [i for i, row in enumerate(rendered) if torch.equal(row, image)]
            assert len(matches) == 1
            seen += matches
    return seen


@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_see_disjoint_parts_and_every_row_once_per_epoch(world_size: int) -> None:
    partitions = []
    for epoch in (0, 1):
        ranks = [_rows_seen(r, world_size, epoch, batch_size=2) for r in range(world_size)]
        assert all(len(rows) == 12 // world_size for rows in ranks)  # equal steps on every rank
        assert sorted(row for rows in ranks for row in rows) == list(
            range(12)
        )  # disjoint, complete
        partitions.append([sorted(rows) for rows in ranks])
    assert partitions[0] != partitions[1]  # reshuffled across ranks every epoch
