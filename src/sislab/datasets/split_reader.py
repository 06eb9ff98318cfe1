"""One split of a sislab dataset read row by row in this process, without Ray.

For the offline tools that read a whole split in a fixed order: FID reference statistics and
image sources (``metrics.features``), segmenter training and scoring (``metrics.segmenters``).
Training streams shards through Ray Data instead (``datasets.pipeline``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from sislab.datasets.manifest import Manifest, load_manifest
from sislab.datasets.preprocess import decode_image, decode_label
from sislab.datasets.shards import read_shard
from sislab.datasets.storage import Location, StorageOptions, resolve
from sislab.datasets.synthetic import SyntheticParams, parse_synthetic_uri
from sislab.datasets.synthetic_writer import synthetic_manifest
from sislab.errors import DataError

Row = tuple[str, np.ndarray, np.ndarray | None]  # key, RGB image, stored label ids (or None)
SPLIT_FIX = "pass one of those splits"


def open_uri(
    uri: str, storage: StorageOptions | None = None
) -> tuple[Manifest, Location | None, SyntheticParams | None]:
    """The manifest of the dataset at ``uri``, where its shards are, or its synthetic parameters.

    Args:
        uri: Local folder, ``s3://bucket/prefix`` or ``synthetic://...``.
        storage: Endpoint and region of an ``s3://`` dataset (default: the AWS environment).
    """
    if uri.startswith("synthetic://"):
        params = parse_synthetic_uri(uri)
        return synthetic_manifest(params), None, params
    location = resolve(uri, storage)
    return load_manifest(location), location, None


def split_count(
    uri: str, split: str, storage: StorageOptions | None = None, fix: str = SPLIT_FIX
) -> int:
    """Rows of a split, from the manifest only (``fix``: what an unknown split's error says)."""
    manifest, _, params = open_uri(uri, storage)
    if params is not None:
        return len(params.split_range(split))
    return manifest.split(split, uri, fix).rows


def split_keys(uri: str, split: str, storage: StorageOptions | None = None) -> list[str]:
    """Row keys of a split in order (synthetic: the 8-digit sample index)."""
    manifest, location, params = open_uri(uri, storage)
    if params is not None:
        return [f"{i:08d}" for i in params.split_range(split)]
    keys: list[str] = []
    for shard in manifest.split(split, uri, SPLIT_FIX).shards:
        keys += read_shard(location, shard).column("key").to_pylist()
    return keys


def iter_rows(
    uri: str, split: str, *, labels: bool, storage: StorageOptions | None = None
) -> Iterator[Row]:
    """The rows of a split in order, images decoded (and label maps, when ``labels``).

    Raises:
        DataError: Unknown split, unreadable shard, or a row that does not decode (its key and
            shard named).
    """
    manifest, location, params = open_uri(uri, storage)
    if params is not None:
        for index in params.split_range(split):
            image, label = params.render(index)
            yield f"{index:08d}", image, label if labels else None
        return
    columns = ("key", "image", "label") if labels else ("key", "image")
    for shard in manifest.split(split, uri, SPLIT_FIX).shards:
        table = read_shard(location, shard)
        values = [table.column(c).to_pylist() for c in columns]
        for key, image, *label in zip(*values, strict=True):
            try:
                decoded = decode_image(image)
                stored = decode_label(label[0]) if labels else None
                if stored is not None and decoded.shape[:2] != stored.shape:
                    raise ValueError(f"image {decoded.shape[:2]} and label {stored.shape} differ")
            except Exception as err:  # any decode failure is a corrupt row
                raise DataError(
                    f"corrupt sample {key!r} in {location.display(shard.path)}: {err}",
                    fix="run `sislab data verify` on the dataset, and re-run `sislab data "
                    "convert` for it",
                ) from None
            yield key, decoded, stored
