"""Parquet shards: ``<split>/part-NNNNN.parquet`` with the source bytes of every sample.

Rows are ``key`` (string), ``image`` (encoded bytes exactly as in the source: JPEG stays JPEG, PNG
stays PNG, never re-encoded), ``label`` (PNG bytes), ``instance`` (PNG bytes or null), ``width`` and
``height`` (of the image). The bytes are already compressed, so shards use no Parquet compression;
page checksums are written so that a reader can detect flipped bytes inside a page.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from sislab.datasets.manifest import ShardInfo
from sislab.datasets.storage import Location, read_bytes, write_bytes
from sislab.errors import DataError

SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("image", pa.binary()),
        ("label", pa.binary()),
        ("instance", pa.binary()),
        ("width", pa.int32()),
        ("height", pa.int32()),
    ]
)
DEFAULT_TARGET_BYTES = 128 * 1024 * 1024
_ROW_GROUP_ROWS = 64
# One Ray Data task reads and decodes one shard, so a split written as one shard (every split
# under DEFAULT_TARGET_BYTES) decodes on one core. A split of MIN_SHARDS row groups or more is
# cut into at least MIN_SHARDS shards whatever its size in bytes; no shard but a split's last is
# under a row group.
MIN_SHARDS = 8
MIN_SHARD_ROWS = _ROW_GROUP_ROWS


def shard_rows(rows: int) -> int:
    """Most rows in one shard of a split of ``rows`` rows: ``MIN_SHARDS`` shards or more (so as
    many tasks can decode the split at once) where each still holds ``MIN_SHARD_ROWS`` rows."""
    return max(MIN_SHARD_ROWS, -(-rows // MIN_SHARDS))


@dataclass(frozen=True)
class Row:
    """One sample as stored: encoded bytes plus the image size."""

    key: str
    image: bytes
    label: bytes
    instance: bytes | None
    width: int
    height: int

    @property
    def nbytes(self) -> int:
        """Payload size, for shard sizing."""
        return len(self.image) + len(self.label) + len(self.instance or b"")


def shard_path(split: str, index: int) -> str:
    """Manifest path of shard ``index`` of ``split``."""
    return f"{split}/part-{index:05d}.parquet"


def encode_shard(rows: list[Row]) -> bytes:
    """The Parquet file holding ``rows``, as bytes."""
    table = pa.Table.from_pydict(
        {name: [getattr(r, name) for r in rows] for name in SCHEMA.names}, schema=SCHEMA
    )
    buf = io.BytesIO()
    pq.write_table(
        table,
        buf,
        compression="none",
        row_group_size=_ROW_GROUP_ROWS,
        write_page_checksum=True,
    )
    return buf.getvalue()


def write_shard(location: Location, split: str, index: int, rows: list[Row]) -> ShardInfo:
    """Write one shard and describe it for the manifest."""
    data = encode_shard(rows)
    path = shard_path(split, index)
    write_bytes(location.fs, location.path(path), data)
    return ShardInfo(path=path, rows=len(rows), sha256=hashlib.sha256(data).hexdigest())


class ShardWriter:
    """Append rows to a split and cut a new shard whenever the payload reaches a target size
    or the rows a limit.

    Args:
        location: Dataset root.
        split: Split name (the shard folder).
        target_bytes: Payload bytes per shard (the last shard may be smaller).
        first_index: Number of the first shard written.
        max_rows: Rows per shard at most (``shard_rows`` of the split's rows; None: no limit).
    """

    def __init__(
        self,
        location: Location,
        split: str,
        target_bytes: int = DEFAULT_TARGET_BYTES,
        first_index: int = 0,
        max_rows: int | None = None,
    ) -> None:
        self.location = location
        self.split = split
        self.target_bytes = target_bytes
        self.max_rows = max_rows
        self.index = first_index
        self.shards: list[ShardInfo] = []
        self._rows: list[Row] = []
        self._bytes = 0

    def add(self, row: Row) -> None:
        """Buffer one row; writes a shard when the buffer reaches ``target_bytes`` or
        ``max_rows``."""
        self._rows.append(row)
        self._bytes += row.nbytes
        if self._bytes >= self.target_bytes or len(self._rows) == self.max_rows:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows (if any) as one shard."""
        if not self._rows:
            return
        self.shards.append(write_shard(self.location, self.split, self.index, self._rows))
        self.index += 1
        self._rows, self._bytes = [], 0

    def close(self) -> list[ShardInfo]:
        """Write what is left and return every shard written."""
        self.flush()
        return self.shards


def read_shard(location: Location, shard: ShardInfo, *, verify: bool = True) -> pa.Table:
    """Read one shard whole, checking its sha256 against the manifest first.

    Raises:
        DataError: Missing file, sha256 mismatch, or a file Parquet cannot read; the message
            names the shard.
    """
    where = location.display(shard.path)
    try:
        data = read_bytes(location.fs, location.path(shard.path))
    except (FileNotFoundError, OSError) as err:
        raise DataError(f"cannot read shard {where}: {err}") from None
    if verify:
        digest = hashlib.sha256(data).hexdigest()
        if digest != shard.sha256:
            raise DataError(
                f"shard {where} is corrupt: sha256 {digest[:12]}… != manifest {shard.sha256[:12]}…",
                fix="re-run `sislab data convert` (it rewrites bad shards) or restore the file",
            )
    try:
        table = pq.read_table(pa.BufferReader(data), page_checksum_verification=True)
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"shard {where} is not a readable Parquet file: {err}") from None
    if table.num_rows != shard.rows:
        raise DataError(f"shard {where} has {table.num_rows} rows, manifest says {shard.rows}")
    return table
