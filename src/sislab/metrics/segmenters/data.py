"""Batches of a dataset split for training and scoring segmenters (rows from
``datasets.split_reader``, in-process, no Ray).

Label ids become sislab's training ids (the manifest's lookup) and every sample is resized to one
``(H, W)``: images bicubic, labels nearest, as the training pipeline does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from sislab.datasets.preprocess import resize_image, resize_map
from sislab.datasets.split_reader import iter_rows, open_uri
from sislab.errors import DataError


@dataclass(frozen=True)
class DatasetInfo:
    """What a segmenter needs to know about a dataset.

    Attributes:
        uri: The dataset URI.
        name: Manifest name (``cityscapes``, ``synthetic-shapes``, ...).
        num_classes: Training ids, the don't-care id included.
        dontcare: Training id of the don't-care class (None: the dataset has none).
        size: Native ``(H, W)`` of synthetic datasets; None for sharded ones.
    """

    uri: str
    name: str
    num_classes: int
    dontcare: int | None
    size: tuple[int, int] | None = None


@dataclass(frozen=True)
class Batch:
    """Consecutive rows of a split: keys, uint8 ``(B, H, W, 3)`` images, uint8 ``(B, H, W)``
    training ids, and the position of the first row in the split."""

    keys: list[str]
    images: np.ndarray
    labels: np.ndarray
    start: int


def dataset_info(uri: str) -> DatasetInfo:
    """Name, training ids and don't-care id of the dataset at ``uri`` (manifest only)."""
    manifest, _, params = open_uri(uri)
    dontcare = None
    if manifest.dontcare_id is not None:
        dontcare = int(manifest.training_ids()[manifest.dontcare_id])
    size = (params.size, params.size) if params is not None else None
    return DatasetInfo(uri, manifest.name, manifest.num_classes, dontcare, size)


def iter_split(
    uri: str, split: str, size: tuple[int, int], batch_size: int = 16
) -> Iterator[Batch]:
    """Batches of a split in row order, every sample resized to ``size``.

    Raises:
        DataError: Unknown split, unreadable or corrupt shard, or a label id the manifest lacks.
    """
    lut = open_uri(uri)[0].training_ids()
    keys: list[str] = []
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    start = 0
    for key, image, stored in iter_rows(uri, split, labels=True):
        label = lut[stored]
        if (label < 0).any():
            bad = sorted(set(np.unique(stored[label < 0]).tolist()))
            raise DataError(f"row {key!r} of {uri} has label ids {bad} not in the class table")
        keys.append(key)
        images.append(resize_image(image, size))
        labels.append(resize_map(label.astype(np.uint8), size))
        if len(keys) == batch_size:
            yield Batch(keys, np.stack(images), np.stack(labels), start)
            start += len(keys)
            keys, images, labels = [], [], []
    if keys:
        yield Batch(keys, np.stack(images), np.stack(labels), start)


def load_split(uri: str, split: str, size: tuple[int, int]) -> Batch:
    """A whole split in memory (for training small segmenters).

    Raises:
        DataError: As ``iter_split``, or an empty split.
    """
    batches = list(iter_split(uri, split, size, batch_size=256))
    if not batches:
        raise DataError(f"split {split!r} of {uri} has no rows", fix="use a split with rows")
    return Batch(
        [k for b in batches for k in b.keys],
        np.concatenate([b.images for b in batches]),
        np.concatenate([b.labels for b in batches]),
        0,
    )
