"""Instance maps are kept as uint16: the boundaries the models read are those of the stored ids."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sislab.datasets.preprocess import compact_instance
from sislab.models.semantic_input import instance_edges


def _edges(ids: np.ndarray) -> torch.Tensor:
    return instance_edges(torch.from_numpy(ids.astype(np.int64))[None, None])


def test_the_ids_of_an_8_or_16_bit_map_are_kept() -> None:
    rng = np.random.default_rng(0)
    for dtype, high in ((np.uint8, 256), (np.int32, 65536)):
        ids = rng.integers(0, high, (9, 11)).astype(dtype)
        out = compact_instance(ids)
        assert out.dtype == np.uint16 and np.array_equal(out, ids)


def test_ids_beyond_16_bits_are_renumbered_with_the_same_boundaries() -> None:
    # 7 and 65543 (and -1 and 65535) would be one id if cast to uint16.
    values = np.array([7, 65543, 70_000, -1, 65535, 2**31 - 1], np.int64)
    ids = values[np.random.default_rng(1).integers(0, len(values), (16, 16))]
    out = compact_instance(ids)
    assert out.dtype == np.uint16
    assert torch.equal(_edges(out), _edges(ids))
    # Renumbered in id order: 0 for the smallest id present.
    assert np.array_equal(np.argsort(np.unique(ids)), np.unique(out))
    assert out[ids == ids.min()].max() == 0


def test_a_map_of_more_than_65536_instances_is_refused() -> None:
    ids = np.arange(65537, dtype=np.int32).reshape(1, -1) - 1
    with pytest.raises(ValueError, match="65537 distinct ids"):
        compact_instance(ids)
