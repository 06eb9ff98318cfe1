"""Ray Data streaming of a dataset into Ray Train workers.

Driver side, ``build_ray_datasets`` only builds a lazy plan: a list of shard paths (or of sample
indices for ``synthetic://``) that Ray Data tasks read, verify (sha256 against the manifest),
decode and resize in ``map_batches``; the driver never holds the data. Worker side,
``iter_epoch_batches`` takes the worker's ``get_dataset_shard(...)`` iterator, reshuffles it every
epoch by seed, applies the random crop and flip and yields model-ready batches.

A split is read by as many tasks as the cluster has CPUs (at most one per shard), each reading and
decoding its share of the shards (``shards_per_task``) in chunks of ``DECODE_ROWS`` rows that it
hands on as they are ready, one block each, so shards decode in parallel and a task holds one
chunk of decoded rows at a time. No more tasks than CPUs: fractional ``read_cpus`` would otherwise
start more worker processes than cores on a small machine, and Ray ends the extra ones once idle,
so every epoch paid their start again. ``cache`` keeps the decoded, resized rows (the part of the
work that is the same every epoch) in the object store after one pass, so that later epochs skip
the read and decode.

The random crop and flip run on the worker, not in ``map_batches``: a Ray Data task does not know
the epoch, so a seeded crop there would repeat every epoch. Each row carries its target size and
whether it may be flipped, and the worker draws both from ``(seed, epoch, key)``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from sislab.datasets.checks import CORRUPT_ROW_FIX
from sislab.datasets.epochs import EpochBatches, iter_epoch_batches
from sislab.datasets.manifest import Manifest, ShardInfo
from sislab.datasets.preprocess import Preprocess, compact_instance, decode_sample
from sislab.datasets.shards import read_shard
from sislab.datasets.split_reader import open_uri, split_count
from sislab.datasets.storage import Location, StorageOptions
from sislab.datasets.synthetic import (
    SyntheticParams,
    render_sample_with_instances,
)
from sislab.errors import DataError
from sislab.models.geometry import DatasetGeometry
from sislab.spec.models import DatasetSpec

__all__ = [
    "EpochBatches",
    "build_ray_datasets",
    "iter_epoch_batches",
    "manifest_geometry",
    "open_dataset",
    "split_dataset",
    "split_rows",
]

log = logging.getLogger(__name__)

SPEC_SPLIT_FIX = "set dataset.train_split / dataset.val_split to one of those"


# What ``open_dataset`` returns: the manifest, where the shards lie, the synthetic parameters.
Opened = tuple[Manifest, Location | None, SyntheticParams | None]


def open_dataset(spec: DatasetSpec) -> Opened:
    """The manifest of ``spec.uri`` plus where its shards are (or its synthetic parameters)."""
    return open_uri(spec.uri, StorageOptions(spec.endpoint_override, spec.region))


def split_rows(spec: DatasetSpec, split: str) -> int:
    """Rows of a split, read from the manifest only (for epoch lengths)."""
    storage = StorageOptions(spec.endpoint_override, spec.region)
    return split_count(spec.uri, split, storage, SPEC_SPLIT_FIX)


def manifest_geometry(dataset_spec: DatasetSpec, height: int, width: int) -> DatasetGeometry:
    """Label channels (don't-care included) and instance use of a dataset, from its manifest.

    The upsampling default is the paper preset's when the manifest names one of the papers'
    datasets (``cityscapes``: 'more'), else SPADE's 'normal'.
    """
    from sislab.datasets.presets import DATASET_PRESETS

    manifest, _, _ = open_dataset(dataset_spec)
    preset = DATASET_PRESETS.get(manifest.name)
    return DatasetGeometry(
        num_classes=manifest.num_classes,
        use_instance=manifest.has_instance,
        height=height,
        width=width,
        upsampling=preset.upsampling if preset else "normal",
        name=manifest.name,
    )


def _split(manifest: Manifest, split: str, uri: str):
    return manifest.split(split, uri, SPEC_SPLIT_FIX)


def _is_transient(err: DataError) -> bool:
    # read_shard raises DataError(...) from None: the I/O error it replaces is still __context__.
    # A store that is unreachable or resets the connection raises OSError; a missing file, a
    # sha256 mismatch or a Parquet error is permanent and never retried.
    cause = err.__context__
    return isinstance(cause, OSError) and not isinstance(cause, FileNotFoundError)


def read_shard_with_retries(
    location: Location, shard: ShardInfo, retries: int, backoff_s: float
) -> pa.Table:
    """``read_shard`` retried ``retries`` times on I/O errors, waiting ``backoff_s`` doubling.

    Raises:
        DataError: A permanent error at once, or the last I/O error once the retries are spent;
            the message names the shard's URI and how long it tried.
    """
    begin, delay = time.monotonic(), backoff_s
    for attempt in range(retries + 1):
        try:
            return read_shard(location, shard)
        except DataError as err:
            if not _is_transient(err):
                raise
            if attempt == retries:
                raise DataError(
                    f"{err.message} (gave up after {attempt + 1} attempts over "
                    f"{time.monotonic() - begin:.1f} s)",
                    fix="check that the store is reachable from every node (endpoint, network, "
                    "credentials), or raise dataset.read_retries / dataset.retry_backoff_s",
                ) from None
            log.warning("retry %d/%d in %.1f s: %s", attempt + 1, retries, delay, err.message)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class _ReadShards:
    """Ray Data UDF: one row per shard in, that shard's rows out (sha256 checked, I/O retried)."""

    location: Location
    sha: dict[str, tuple[str, int]]
    skip: bool
    retries: int = 0
    backoff_s: float = 1.0

    def __call__(self, batch: pa.Table) -> pa.Table:
        tables = []
        for path in batch.column("shard").to_pylist():
            sha, rows = self.sha[path]
            shard = ShardInfo(path=path, rows=rows, sha256=sha)
            try:
                table = read_shard_with_retries(self.location, shard, self.retries, self.backoff_s)
                errors = [""] * table.num_rows
            except DataError as err:
                if not self.skip:
                    raise
                log.warning("skipping %d rows of %s", rows, err.message)
                table = pa.table(
                    {
                        "key": [f"{path}#{i}" for i in range(rows)],
                        "image": pa.array([b""] * rows, pa.binary()),
                        "label": pa.array([b""] * rows, pa.binary()),
                        "instance": pa.array([None] * rows, pa.binary()),
                        "width": pa.array([0] * rows, pa.int32()),
                        "height": pa.array([0] * rows, pa.int32()),
                    }
                )
                errors = [err.message] * rows
            table = table.append_column("shard", pa.array([path] * table.num_rows))
            table = table.append_column("row", pa.array(range(table.num_rows), pa.int32()))
            tables.append(table.append_column("error", pa.array(errors, pa.string())))
        return pa.concat_tables(tables)


def _empty_arrays(pre: Preprocess, instance: bool) -> tuple[np.ndarray, np.ndarray, Any]:
    h, w = pre.load_shape()
    inst = np.zeros((h, w), np.uint16) if instance else None
    return np.zeros((h, w, 3), np.uint8), np.zeros((h, w), np.uint8), inst


def _finish(
    rows: list[tuple[str, np.ndarray, np.ndarray, Any, bool]], pre: Preprocess, instance: bool
) -> dict[str, np.ndarray]:
    out = {
        "key": np.array([r[0] for r in rows], dtype=object),
        "image": np.stack([r[1] for r in rows]),
        "label": np.stack([r[2] for r in rows]),
        "valid": np.array([r[4] for r in rows], dtype=bool),
        "out_hw": np.tile(np.array(pre.image_size, np.int32), (len(rows), 1)),
        "flip": np.full(len(rows), pre.train and pre.flip, dtype=bool),
    }
    if instance:
        out["instance"] = np.stack([r[3] for r in rows])
    return out


@dataclass(frozen=True)
class _Decode:
    """Ray Data UDF: decode, map label ids to training ids and resize; bad rows per on_corrupt."""

    pre: Preprocess
    lut: np.ndarray
    instance: bool
    skip: bool

    def __call__(self, batch: pa.Table) -> dict[str, np.ndarray]:
        cols = {name: batch.column(name).to_pylist() for name in batch.column_names}
        rows = []
        for i, key in enumerate(cols["key"]):
            try:
                if cols["error"][i]:
                    raise ValueError(cols["error"][i])
                image, stored, inst = decode_sample(
                    cols["image"][i],
                    cols["label"][i],
                    cols["instance"][i],
                    self.instance,
                    (cols["width"][i], cols["height"][i]),
                )
                label = self.lut[stored]
                if (label < 0).any():
                    bad = sorted(set(np.unique(stored[label < 0]).tolist()))
                    raise ValueError(f"label ids {bad} are not in the class table")
                image, label, inst = self.pre.resize(image, label.astype(np.uint8), inst)
                if inst is not None:
                    inst = compact_instance(inst)
                rows.append((key, image, label, inst, True))
            except Exception as err:  # any decode failure is a corrupt row
                where = f"shard {cols['shard'][i]} row {cols['row'][i]} (key {key!r})"
                if not self.skip:
                    raise DataError(
                        f"corrupt sample in {where}: {err}",
                        fix=CORRUPT_ROW_FIX,
                    ) from None
                log.warning("skipping corrupt sample in %s: %s", where, err)
                rows.append((key, *_empty_arrays(self.pre, self.instance), False))
        return _finish(rows, self.pre, self.instance)


DECODE_ROWS = 16


@dataclass(frozen=True)
class _ReadAndDecode:
    """Ray Data UDF: shard paths in, their decoded rows out, ``DECODE_ROWS`` rows per batch."""

    read: _ReadShards
    decode: _Decode

    def __call__(self, batch: pa.Table) -> Iterator[dict[str, np.ndarray]]:
        for i in range(batch.num_rows):
            table = self.read(batch.slice(i, 1))
            for start in range(0, table.num_rows, DECODE_ROWS):
                yield self.decode(table.slice(start, DECODE_ROWS))


@dataclass(frozen=True)
class _Render:
    """Ray Data UDF: sample indices -> synthetic samples, resized like real ones."""

    params: SyntheticParams
    offset: int
    pre: Preprocess

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = []
        for i in batch["id"].tolist():
            index = self.offset + int(i)
            image, label, inst = render_sample_with_instances(
                index,
                num_classes=self.params.classes,
                size=self.params.size,
                seed=self.params.seed,
                variation=self.params.variation,
            )
            image, label, inst = self.pre.resize(image, label, inst.astype(np.int32))
            inst = compact_instance(inst)
            rows.append((f"{index:08d}", image, label, inst, True))
        return _finish(rows, self.pre, True)


def build_ray_datasets(
    dataset_spec: DatasetSpec,
    image_size: tuple[int, int] | int,
    seed: int,
    *,
    cache: bool = False,
    opened: Opened | None = None,
) -> dict[str, Any]:
    """Ray Data datasets of the train and val splits (keys ``train`` and ``val``).

    Args:
        dataset_spec: The spec's dataset section.
        image_size: Final (height, width) (an int: square).
        seed: Seed of the block order (per-epoch shuffles are seeded in ``iter_epoch_batches``).
        cache: Read and decode both splits now and keep the rows in the object store (see
            ``cache_splits``); otherwise the plan stays lazy and every epoch reads and decodes.
        opened: What ``open_dataset`` returned for ``dataset_spec`` (None: read here).

    Returns:
        ``{"train": Dataset, "val": Dataset}``; rows hold ``key``, ``image`` uint8 (H, W, 3),
        ``label`` uint8 training ids, ``instance`` uint16 (``compact_instance``; when the dataset
        has instance maps),
        ``valid``, ``out_hw`` and ``flip``.
    """
    hw = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    roles = (("train", dataset_spec.train_split), ("val", dataset_spec.val_split))
    opened = opened or open_dataset(dataset_spec)  # one manifest read for both splits
    return {
        role: split_dataset(
            dataset_spec, split, hw, train=role == "train", seed=seed, cache=cache, opened=opened
        )
        for role, split in roles
    }


def split_dataset(
    dataset_spec: DatasetSpec,
    split: str,
    hw: tuple[int, int],
    *,
    train: bool,
    seed: int,
    cache: bool,
    opened: Opened | None = None,
) -> Any:
    """The Ray Data dataset of one split (see ``build_ray_datasets``); ``train``: rows carry the
    random crop and flip, and the block order is shuffled by ``seed``. ``opened``: what
    ``open_dataset`` returned for ``dataset_spec`` (None: read here)."""
    import ray.data

    manifest, location, params = opened or open_dataset(dataset_spec)
    skip = dataset_spec.on_corrupt == "skip"
    pre = Preprocess(dataset_spec.preprocess, hw, dataset_spec.load_size, train, dataset_spec.flip)
    if params is not None:
        indices = params.split_range(split)
        n = len(indices)
        ds = ray.data.range(n, override_num_blocks=max(1, min(n // 16, 64)))
        ds = ds.map_batches(
            _Render(params, indices.start, pre),
            batch_size=16,
            num_cpus=dataset_spec.read_cpus,
        )
    else:
        info = _split(manifest, split, dataset_spec.uri)
        sha = {s.path: (s.sha256, s.rows) for s in info.shards}
        items = [{"shard": s.path} for s in info.shards]
        ds = ray.data.from_items(items, override_num_blocks=max(1, len(items)))
        read = _ReadShards(
            location, sha, skip, dataset_spec.read_retries, dataset_spec.retry_backoff_s
        )
        decode = _Decode(pre, manifest.training_ids(), manifest.has_instance, skip)
        tasks = max(1, min(len(items), _cluster_cpus()))
        ds = ds.map_batches(
            _ReadAndDecode(read, decode),
            batch_size=shards_per_task(len(items), tasks),
            batch_format="pyarrow",
            num_cpus=dataset_spec.read_cpus,
            compute=ray.data.TaskPoolStrategy(size=tasks),
        )
        # A block per chunk, not per task (Ray's default: up to 128 MiB): blocks are what the
        # block order of a train split shuffles and what Ray Train splits between workers.
        row_bytes = decoded_row_bytes(pre.load_shape(), manifest.has_instance)
        ds.context.target_max_block_size = row_bytes * DECODE_ROWS
    # Blocks in the order of their tasks, not of the tasks' ends: the cache then holds the same
    # block list whenever the split is built, so a seed gives the same epochs again (a resumed
    # trial's among them); the seeded block orders permute that list.
    ds.context.execution_options.preserve_order = True
    if cache:
        ds = fill_cache(ds)
    return ds.randomize_block_order(seed=seed) if train else ds


def shards_per_task(shards: int, tasks: int) -> int:
    """Shards each read-and-decode task takes so that ``tasks`` tasks cover a split at once.

    Not one task per shard: Ray Data 2.60's executor notices a finished task only when its loop's
    ``ray.wait`` for all running tasks returns (after up to 0.1 s while another still runs) and
    dispatches the next one a loop later, so every task's end left its core idle for 0.1-0.2 s; a
    2-CPU fill of 8 shards was idle a third of the time. One task per CPU has no such ends
    between its shards, at the cost of at most one shard's decoding of imbalance at the end.
    """
    return max(1, -(-shards // max(1, tasks)))


def fill_cache(ds: Any) -> Any:
    """``ds.materialize()`` without Ray Data's per-operator resource budget, which is then
    restored on the materialized dataset (so its epochs stream under the budget as before).

    Ray Data 2.60 budgets an execution with what its autoscaling coordinator has reserved for it;
    it asks without blocking, answers from a cache that stays empty until the reply arrives, and
    refreshes that answer once a second, so for the first second of every execution the budget is
    zero and the fill decodes one shard at a time on one core. A fill keeps every block it makes,
    so the budget has nothing to hold back; the tasks at once stay capped by the operator's
    ``TaskPoolStrategy`` (one per CPU) and by the CPUs Ray schedules them on.
    """
    context = ds.context
    budgeted = context.op_resource_reservation_enabled
    context.op_resource_reservation_enabled = False
    try:
        filled = ds.materialize()
    finally:
        context.op_resource_reservation_enabled = budgeted
    filled.context.op_resource_reservation_enabled = budgeted
    return filled


def _cluster_cpus() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def decoded_row_bytes(hw: tuple[int, int], has_instance: bool) -> int:
    """Bytes of one decoded row at ``hw``: uint8 RGB image and label, uint16 instance map."""
    return hw[0] * hw[1] * (3 + 1 + (2 if has_instance else 0))


def decoded_bytes(
    dataset_spec: DatasetSpec, image_size: tuple[int, int], opened: Opened | None = None
) -> int:
    """Bytes the decoded train and val splits take in the object store, from the manifest
    (``opened``: what ``open_dataset`` returned; None: read here)."""
    manifest, _, _ = opened or open_dataset(dataset_spec)
    rows = {name: _split(manifest, name, dataset_spec.uri).rows for name in manifest.splits}
    return decoded_split_bytes(dataset_spec, image_size, rows, manifest.has_instance)


def decoded_split_bytes(
    dataset_spec: DatasetSpec,
    image_size: tuple[int, int],
    split_rows: dict[str, int],
    has_instance: bool,
) -> int:
    """Bytes of the decoded train and val splits (image, label and instance map at the size the
    decode stage emits: the load size of ``resize_and_crop`` for train) given each split's rows."""
    total = 0
    for train, split in ((True, dataset_spec.train_split), (False, dataset_spec.val_split)):
        pre = Preprocess(dataset_spec.preprocess, image_size, dataset_spec.load_size, train)
        h, w = pre.load_shape()
        total += decoded_row_bytes((h, w), has_instance) * split_rows.get(split, 0)
    return total


# The rest of the object store stays for Ray Data's streaming, checkpoints and everything else.
CACHE_AUTO_FRACTION = 0.3


def cache_splits(
    dataset_spec: DatasetSpec,
    image_size: tuple[int, int],
    *,
    trials_at_once: int = 1,
    opened: Opened | None = None,
) -> bool:
    """Whether to keep the decoded splits in the object store: ``dataset.cache`` on/off, or for
    auto, whether the copies of ``trials_at_once`` trials (each holds its own) take at most
    ``CACHE_AUTO_FRACTION`` of the cluster's object store. ``synthetic://`` is never cached.
    ``opened``: what ``open_dataset`` returned (None: read here, when auto needs it)."""
    import ray

    if dataset_spec.uri.startswith("synthetic://") or dataset_spec.cache == "off":
        return False
    if dataset_spec.cache == "on":
        return True
    store = ray.cluster_resources().get("object_store_memory", 0.0)
    need = decoded_bytes(dataset_spec, image_size, opened) * trials_at_once
    log.info(
        "decoded splits of %d trial(s) at once %.1f MB, object store %.1f MB",
        trials_at_once,
        need / 1e6,
        store / 1e6,
    )
    return need <= CACHE_AUTO_FRACTION * store
