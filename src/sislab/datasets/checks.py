"""``sislab data inspect`` / ``verify``: what a dataset holds, and whether it is intact."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sislab.datasets.manifest import Manifest, load_manifest
from sislab.datasets.preprocess import decode_label, decode_sample
from sislab.datasets.shards import read_shard
from sislab.datasets.storage import Location, StorageOptions, read_bytes, resolve
from sislab.errors import DataError

log = logging.getLogger(__name__)

# What to do about a row that does not decode or whose parts disagree (data verify, the pipeline).
CORRUPT_ROW_FIX = (
    "convert the sample again from its source (`sislab data convert`), or set "
    "`dataset.on_corrupt: skip` to train without it (counted in data/skipped_rows); "
    "`sislab data verify URI` lists every bad row"
)
CORRUPT_SHARD_FIX = "re-run `sislab data convert` (it rewrites bad shards) or restore the files"


def inspect_dataset(
    uri: str, storage: StorageOptions | None = None, max_rows: int | None = None
) -> dict:
    """Classes, row counts, class pixel frequencies and image sizes of a sharded dataset.

    Args:
        uri: Dataset root (local or s3://).
        storage: Endpoint and region for s3://.
        max_rows: Decode at most this many rows per split for the statistics (None: all).

    Returns:
        ``{"name", "num_classes", "dontcare_id", "has_instance", "classes": [...],
        "splits": {split: {"rows", "shards", "bytes", "image_sizes": {"WxH": n},
        "class_pixel_freq": {class name: fraction}}}}``.
    """
    location = resolve(uri, storage)
    manifest = load_manifest(location)
    names = {c.id: c.name for c in manifest.classes}
    out = {
        "name": manifest.name,
        "num_classes": manifest.num_classes,
        "dontcare_id": manifest.dontcare_id,
        "has_instance": manifest.has_instance,
        "classes": [c.model_dump(mode="json") for c in manifest.classes],
        "splits": {},
    }
    for split, info in manifest.splits.items():
        sizes: Counter[str] = Counter()
        pixels = np.zeros(256, dtype=np.int64)
        nbytes, seen = 0, 0
        for shard in info.shards:
            path = location.path(shard.path)
            nbytes += location.fs.get_file_info(path).size or 0
            if max_rows is not None and seen >= max_rows:
                continue
            table = read_shard(location, shard)
            widths, heights = table.column("width").to_pylist(), table.column("height").to_pylist()
            for w, h in zip(widths, heights, strict=True):
                sizes[f"{w}x{h}"] += 1
            for data in table.column("label").to_pylist():
                if max_rows is not None and seen >= max_rows:
                    break
                pixels += np.bincount(decode_label(data).ravel(), minlength=256)
                seen += 1
        total = max(int(pixels.sum()), 1)
        out["splits"][split] = {
            "rows": info.rows,
            "shards": len(info.shards),
            "bytes": nbytes,
            "image_sizes": dict(sizes.most_common()),
            "class_pixel_freq": {
                names.get(i, f"unknown id {i}"): round(int(pixels[i]) / total, 6)
                for i in np.flatnonzero(pixels)
            },
            "rows_decoded": seen,
        }
    return out


@dataclass
class VerifyResult:
    """Outcome of ``verify_dataset``: empty lists mean the dataset is intact."""

    shards_checked: int = 0
    rows_checked: int = 0
    bad_shards: list[str] = field(default_factory=list)
    bad_rows: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every shard and row passed."""
        return not self.bad_shards and not self.bad_rows


def _check_rows(table: pa.Table, manifest: Manifest, where: str, result: VerifyResult) -> None:
    valid = manifest.training_ids() >= 0
    names = ("key", "image", "label", "instance", "width", "height")
    cols = {n: table.column(n).to_pylist() for n in names}
    for i, key in enumerate(cols["key"]):
        result.rows_checked += 1
        try:
            _, stored, _ = decode_sample(
                cols["image"][i],
                cols["label"][i],
                cols["instance"][i],
                manifest.has_instance,
                (cols["width"][i], cols["height"][i]),
            )
            ids = np.unique(stored)
            if not valid[ids].all():
                raise ValueError(
                    f"label ids {ids[~valid[ids]].tolist()} are not in the class table"
                )
        except Exception as err:  # any failure to decode is a bad row
            result.bad_rows.append(f"{where} row {i} (key {key!r}): {err}")


def verify_dataset(uri: str, storage: StorageOptions | None = None) -> VerifyResult:
    """Check every shard's sha256 and every row: its image, label and instance map decode in full
    (a truncated file is bad even when its header reads), have one size, match the row's
    width/height, and its label ids are in the class table.

    Raises:
        DataError: The manifest itself is missing or invalid.
    """
    location: Location = resolve(uri, storage)
    manifest = load_manifest(location)
    result = VerifyResult()
    seen: set[str] = set()  # a shard listed in several splits is checked (and reported) once
    for info in manifest.splits.values():
        for shard in info.shards:
            if shard.path in seen:
                continue
            seen.add(shard.path)
            result.shards_checked += 1
            where = location.display(shard.path)
            try:
                table = read_shard(location, shard)
            except DataError as err:
                result.bad_shards.append(f"{where}: {err.message}")
                _salvage(location, shard.path, manifest, where, result)
                continue
            _check_rows(table, manifest, where, result)
    return result


def _salvage(
    location: Location, path: str, manifest: Manifest, where: str, result: VerifyResult
) -> None:
    """List the rows of a shard that failed its checksum, where Parquet can still read it."""
    try:
        data = read_bytes(location.fs, location.path(path))
        table = pq.read_table(pa.BufferReader(data))
    except Exception:  # unreadable: the shard is listed, its rows cannot be
        return
    log.debug("shard %s sha256 %s", where, hashlib.sha256(data).hexdigest())
    _check_rows(table, manifest, where, result)
