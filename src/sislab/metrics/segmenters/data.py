"""Rows of a dataset split read in-process (no Ray): for training and scoring segmenters.

``synthetic://`` URIs are rendered procedurally; sharded datasets (local or ``s3://``) are read
shard by shard with their sha256 checked. Label ids become sislab's training ids (the manifest's
lookup) and every sample is resized to one ``(H, W)``: images bicubic, labels nearest, as the
training pipeline does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from sislab.datasets.manifest import Manifest, load_manifest
from sislab.datasets.preprocess import decode_image, decode_label, resize_image, resize_map
from sislab.datasets.shards import read_shard
from sislab.datasets.storage import resolve
from sislab.datasets.synthetic import SyntheticParams, parse_synthetic_uri
from sislab.datasets.synthetic_writer import synthetic_manifest
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


def _open(uri: str) -> tuple[Manifest, SyntheticParams | None]:
    if uri.startswith("synthetic://"):
        params = parse_synthetic_uri(uri)
        return synthetic_manifest(params), params
    return load_manifest(resolve(uri)), None


def dataset_info(uri: str) -> DatasetInfo:
    """Name, training ids and don't-care id of the dataset at ``uri`` (manifest only)."""
    manifest, params = _open(uri)
    dontcare = None
    if manifest.dontcare_id is not None:
        dontcare = int(manifest.training_ids()[manifest.dontcare_id])
    size = (params.size, params.size) if params is not None else None
    return DatasetInfo(uri, manifest.name, manifest.num_classes, dontcare, size)


def split_keys(uri: str, split: str) -> list[str]:
    """Row keys of a split in order (synthetic: the 8-digit sample index)."""
    manifest, params = _open(uri)
    if params is not None:
        return [f"{i:08d}" for i in params.split_range(split)]
    location = resolve(uri)
    keys: list[str] = []
    for shard in manifest.split(split, uri, "pass one of those splits").shards:
        keys += read_shard(location, shard).column("key").to_pylist()
    return keys


def iter_split(
    uri: str, split: str, size: tuple[int, int], batch_size: int = 16
) -> Iterator[Batch]:
    """Batches of a split in row order, every sample resized to ``size``.

    Raises:
        DataError: Unknown split, unreadable or corrupt shard, or a label id the manifest lacks.
    """
    manifest, params = _open(uri)
    lut = manifest.training_ids()
    rows = _synthetic_rows(params, split) if params else _shard_rows(manifest, uri, split)
    keys: list[str] = []
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    start = 0
    for key, image, stored in rows:
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


def _synthetic_rows(params: SyntheticParams, split: str):
    for index in params.split_range(split):
        image, label = params.render(index)
        yield f"{index:08d}", image, label


def _shard_rows(manifest: Manifest, uri: str, split: str):
    location = resolve(uri)
    for shard in manifest.split(split, uri, "pass one of those splits").shards:
        table = read_shard(location, shard)
        columns = (table.column(c).to_pylist() for c in ("key", "image", "label"))
        for key, image, label in zip(*columns, strict=True):
            try:
                decoded, stored = decode_image(image), decode_label(label)
                if decoded.shape[:2] != stored.shape:
                    raise ValueError(f"image {decoded.shape[:2]} and label {stored.shape} differ")
            except Exception as err:  # any decode failure is a corrupt row
                raise DataError(
                    f"corrupt sample {key!r} in {location.display(shard.path)}: {err}",
                    fix="run `sislab data verify` on the dataset",
                ) from None
            yield key, decoded, stored
