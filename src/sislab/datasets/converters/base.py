"""What every converter shares: shard planning, parallel and resumable writing, the report.

A converter lists the samples of each split (``Sample``: key plus source paths) and turns one
sample into a stored ``Row``. Shards are planned from the source file sizes, so the plan is the
same on every run and a re-run after an interruption skips the shards that ``_progress.json``
records as written (and whose file is still there). Samples that cannot be read or decoded, or
whose label ids are not in the class table, are skipped and listed in the report.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from sislab.datasets.classes import load_table
from sislab.datasets.manifest import Manifest, ShardInfo, SplitInfo, save_manifest
from sislab.datasets.preprocess import decode_sample
from sislab.datasets.shards import DEFAULT_TARGET_BYTES, Row, shard_path, shard_rows, write_shard
from sislab.datasets.storage import Location, StorageOptions, exists, read_bytes, resolve
from sislab.datasets.storage import write_bytes as _write
from sislab.errors import DataError

log = logging.getLogger(__name__)
PROGRESS_NAME = "_progress.json"
REPORT_NAME = "conversion_report.json"


@dataclass(frozen=True)
class Sample:
    """One source sample: a key and the files it is made of.

    Attributes:
        key: Unique key within the split (file stem).
        image: Image path, stored byte for byte.
        label: Label PNG path (stored byte for byte), or the part masks a converter merges.
        instance: Instance PNG path, if the dataset has instance maps.
    """

    key: str
    image: str
    label: str | tuple[str, ...]
    instance: str | None = None

    def source_bytes(self) -> int:
        """Total size of the source files (for shard planning)."""
        paths = [self.image, self.instance or ""]
        paths += list(self.label) if isinstance(self.label, tuple) else [self.label]
        return sum(os.path.getsize(p) for p in paths if p and os.path.exists(p))


@dataclass(frozen=True)
class DatasetFormat:
    """A source layout: its class table, split listing and row maker.

    Attributes:
        name: Format name on the command line (``coco-stuff``).
        table: Class-table file in ``sislab.datasets.classes``.
        has_instance: Whether rows carry instance maps (None: when the listing finds them).
        list_samples: Source root -> {split: samples}; raises DataError for a wrong layout.
        label_bytes: Sample -> label PNG bytes (default: the label file as it is).
    """

    name: str
    table: str
    has_instance: bool | None
    list_samples: Callable[[Path], tuple[dict[str, list[Sample]], list[tuple[str, str]]]]
    label_bytes: Callable[[Sample], bytes] | None = None


@dataclass
class ConvertReport:
    """What a conversion did."""

    dataset: str
    rows: dict[str, int] = field(default_factory=dict)
    shards_written: int = 0
    shards_reused: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def make_row(fmt: DatasetFormat, sample: Sample, valid_ids: np.ndarray, has_instance: bool) -> Row:
    """Read and check one sample. Raises on anything unreadable or inconsistent."""
    image = _read(sample.image)
    label = fmt.label_bytes(sample) if fmt.label_bytes else _read(sample.label)
    instance = None
    if has_instance:
        if sample.instance is None or not os.path.exists(sample.instance):
            raise ValueError("instance map missing")
        instance = _read(sample.instance)
    decoded, stored, _ = decode_sample(image, label, instance, has_instance, None)
    ids = np.unique(stored)
    unknown = ids[~valid_ids[ids]]
    if unknown.size:
        raise ValueError(f"label ids {unknown.tolist()} are not in the {fmt.table} class table")
    return Row(sample.key, image, label, instance, decoded.shape[1], decoded.shape[0])


def _plan(samples: list[Sample], target_bytes: int) -> list[list[Sample]]:
    groups: list[list[Sample]] = [[]]
    size = 0
    max_rows = shard_rows(len(samples))
    for s in samples:
        groups[-1].append(s)
        size += s.source_bytes()
        if size >= target_bytes or len(groups[-1]) == max_rows:
            groups.append([])
            size = 0
    return [g for g in groups if g]


def _convert_shard(
    fmt: DatasetFormat,
    dst: str,
    opts: StorageOptions,
    split: str,
    index: int,
    group: list[Sample],
    has_instance: bool,
) -> tuple[str, int, ShardInfo | None, list[tuple[str, str]]]:
    classes, dontcare = load_table(fmt.table)
    valid = np.zeros(256, dtype=bool)
    valid[[c.id for c in classes]] = True
    if dontcare is not None:
        valid[dontcare] = True
    rows, skipped = [], []
    for sample in group:
        try:
            rows.append(make_row(fmt, sample, valid, has_instance))
        except Exception as err:  # a corrupt source file is reported, not fatal
            skipped.append((sample.image, f"{type(err).__name__}: {err}"))
    info = write_shard(resolve(dst, opts), split, index, rows) if rows else None
    return split, index, info, skipped


def convert(
    fmt: DatasetFormat,
    src: Path,
    dst: str,
    *,
    target_bytes: int = DEFAULT_TARGET_BYTES,
    workers: int = 0,
    progress: bool = False,
    storage: StorageOptions | None = None,
) -> ConvertReport:
    """Convert a source tree in ``fmt``'s official layout into shards and ``dataset.json``.

    Args:
        fmt: The source format.
        src: Root of the official download layout.
        dst: Destination folder or s3:// prefix.
        target_bytes: Source bytes per shard.
        workers: Processes (0: convert in this process).
        progress: Show a rich progress bar.
        storage: Endpoint and region for an s3:// destination.

    Returns:
        The report (also written to ``conversion_report.json``).
    """
    opts = storage or StorageOptions()
    location = resolve(dst, opts)
    splits, missing = fmt.list_samples(Path(src))
    report = ConvertReport(dataset=fmt.name, skipped=list(missing))
    has_instance = fmt.has_instance
    if has_instance is None:
        has_instance = all(s.instance for samples in splits.values() for s in samples)
    tasks = [
        (split, i, group)
        for split, samples in splits.items()
        for i, group in enumerate(_plan(samples, target_bytes))
    ]
    plan_id = hashlib.sha256(
        json.dumps([has_instance, [(s, i, [x.key for x in g]) for s, i, g in tasks]]).encode()
    ).hexdigest()
    done = _load_progress(location, plan_id)
    results: dict[tuple[str, int], tuple[ShardInfo | None, list]] = {}
    todo = []
    for split, i, group in tasks:
        entry = done.get(shard_path(split, i))
        if entry is not None and (
            entry["shard"] is None or exists(location.fs, location.path(shard_path(split, i)))
        ):
            shard = ShardInfo(**entry["shard"]) if entry["shard"] else None
            results[(split, i)] = (shard, [tuple(x) for x in entry["skipped"]])
            report.shards_reused += 1
        else:
            todo.append((split, i, group))

    def record(split, i, info, skipped):
        results[(split, i)] = (info, skipped)
        done[shard_path(split, i)] = {
            "shard": info.model_dump() if info else None,
            "skipped": skipped,
        }
        _save_progress(location, plan_id, done)
        report.shards_written += 1

    with _progress_bar(progress, len(todo), fmt.name) as advance:
        if workers > 0 and len(todo) > 1:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = [
                    pool.submit(_convert_shard, fmt, dst, opts, s, i, g, has_instance)
                    for s, i, g in todo
                ]
                for fut in as_completed(futures):
                    record(*fut.result())
                    advance()
        else:
            for s, i, g in todo:
                record(*_convert_shard(fmt, dst, opts, s, i, g, has_instance))
                advance()

    classes, dontcare = load_table(fmt.table)
    split_infos = {}
    for split in splits:
        shards = [results[(s, i)][0] for s, i, _ in tasks if s == split]
        split_infos[split] = SplitInfo(shards=[x for x in shards if x is not None])
        report.rows[split] = split_infos[split].rows
    for s, i, _ in tasks:
        report.skipped.extend(results[(s, i)][1])
    manifest = Manifest(
        name=fmt.name,
        classes=classes,
        dontcare_id=dontcare,
        has_instance=has_instance,
        splits=split_infos,
    )
    save_manifest(location, manifest)
    _write(location.fs, location.path(REPORT_NAME), json.dumps(asdict(report), indent=1).encode())
    return report


def _load_progress(location: Location, plan_id: str) -> dict:
    path = location.path(PROGRESS_NAME)
    if not exists(location.fs, path):
        return {}
    try:
        state = json.loads(read_bytes(location.fs, path))
    except ValueError:
        return {}
    if state.get("plan") != plan_id:
        log.warning("source or shard size changed since the last run: converting from scratch")
        return {}
    return state["done"]


def _save_progress(location: Location, plan_id: str, done: dict) -> None:
    data = json.dumps({"plan": plan_id, "done": done}).encode()
    _write(location.fs, location.path(PROGRESS_NAME), data)


class _progress_bar:
    """A rich progress bar over shards (or nothing), used as ``with ... as advance``."""

    def __init__(self, enabled: bool, total: int, name: str) -> None:
        self.enabled, self.total, self.name = enabled, total, name
        self._bar = None

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.progress import Progress

        self._bar = Progress()
        self._bar.start()
        task = self._bar.add_task(f"converting {self.name} shards", total=self.total)
        return lambda: self._bar.advance(task)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it is a folder, else a DataError naming what the layout lacks."""
    if not path.is_dir():
        raise DataError(
            f"{what} not found: {path}", fix="point SRC at the root of the official download"
        )
    return path
