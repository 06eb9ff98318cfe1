"""``sislab bench data``: decoded samples/s of the Ray Data pipeline against a plain baseline.

Both sides read the same images from the same store in the same run and do the same work per
sample: decode the image, label (and instance map, when the dataset has them), resize them to
``size`` (bicubic / nearest), normalise to [-1, 1] and batch. The baseline is a folder of PNGs
(written next to the dataset: a temporary folder, or a temporary prefix of an ``s3://`` dataset's
bucket, deleted afterwards) read by a ``torch.utils.data.DataLoader`` with one worker process per
CPU (forkserver, as the Ray notes advise next to Ray); the pipeline is what a trial runs:
``split_dataset`` (with the ``cache`` decision of ``dataset.cache``) and ``iter_epoch_batches``.

Each round times, per side, a cold epoch (from building the loader or the dataset to the end of
its first epoch: the DataLoader starts its worker processes, Ray Data plans, reads and decodes,
and with the cache fills it) and then ``epochs`` steady epochs. Ray Data's one-time start on the
new local Ray (``datasets.warm_up``, which every new local Ray of sislab runs: its helper actors,
the decode imports in each worker process) is timed apart, before the rounds.
"""

from __future__ import annotations

import logging
import os
import posixpath
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sislab.datasets.manifest import load_manifest
from sislab.datasets.preprocess import (
    decode_image,
    decode_instance,
    decode_label,
    resize_image,
    resize_map,
    to_model_arrays,
)
from sislab.datasets.shards import read_shard
from sislab.datasets.storage import Location, read_bytes, resolve, write_bytes
from sislab.datasets.synthetic import parse_synthetic_uri
from sislab.datasets.synthetic_writer import write_synthetic
from sislab.spec.models import DatasetSpec

log = logging.getLogger(__name__)


class PngFolder:
    """Map-style torch dataset over ``<key>.png``, ``<key>_label.png`` (and ``<key>_inst.png``)
    in a folder of ``location`` (local or S3), each file read with one request."""

    def __init__(self, location: Location, keys: list[str], size: int, instance: bool) -> None:
        self.location, self.keys, self.size, self.instance = location, keys, size, instance

    def __len__(self) -> int:
        return len(self.keys)

    def _read(self, name: str) -> bytes:
        return read_bytes(self.location.fs, self.location.path(name))

    def __getitem__(self, i: int):
        import torch

        key = self.keys[i]
        hw = (self.size, self.size)
        image = resize_image(decode_image(self._read(f"{key}.png")), hw)
        label = resize_map(decode_label(self._read(f"{key}_label.png")), hw)
        img, lab = to_model_arrays(image[None], label[None])
        out = [torch.from_numpy(img[0]), torch.from_numpy(lab[0])]
        if self.instance:
            inst = resize_map(decode_instance(self._read(f"{key}_inst.png")), hw)
            out.append(torch.from_numpy(inst.astype(np.int64)[None]))
        return tuple(out)


def _export_pngs(source: Location, split: str, dst: Location) -> tuple[list[str], bool]:
    """Write every image, label (and instance map) of ``split`` as PNG files under ``dst``;
    returns the keys and whether there are instance maps."""
    import io

    from PIL import Image

    def put(name: str, array: np.ndarray) -> None:
        buf = io.BytesIO()
        Image.fromarray(array).save(buf, format="PNG")
        write_bytes(dst.fs, dst.path(name), buf.getvalue())

    manifest = load_manifest(source)
    keys = []
    for shard in manifest.splits[split].shards:
        table = read_shard(source, shard)
        columns = [table.column(c).to_pylist() for c in ("key", "image", "label", "instance")]
        for key, image, label, instance in zip(*columns, strict=True):
            put(f"{key}.png", decode_image(image))
            put(f"{key}_label.png", decode_label(label))
            if manifest.has_instance:
                inst = decode_instance(instance)
                put(f"{key}_inst.png", inst.astype(np.uint16 if inst.max() > 255 else np.uint8))
            keys.append(key)
    return keys, manifest.has_instance


def _baseline_location(source: Location, tmp: Path) -> Location:
    """Where the PNG folder goes: a temporary local folder, or for an S3 dataset a new prefix
    beside it in the same bucket (so both sides read from the same store)."""
    if source.uri.startswith("s3://"):
        name = f"sislab-bench-pngs-{uuid.uuid4().hex[:8]}"
        root = posixpath.join(posixpath.dirname(source.root.rstrip("/")), name)
        return Location(source.fs, root, f"s3://{root}")
    (tmp / "pngs").mkdir()
    return resolve(str(tmp / "pngs"))


def bench_data(
    uri: str,
    size: int,
    *,
    split: str = "train",
    epochs: int = 2,
    batch_size: int = 16,
    rounds: int = 2,
    cache: str = "auto",
    endpoint_override: str | None = None,
) -> dict:
    """Measure decoded samples/s of the Ray Data pipeline and of a folder-of-PNGs DataLoader.

    Args:
        uri: Sharded dataset (local or s3://) or a synthetic:// URI (rendered to local shards).
        size: Square output size.
        split: Split to read.
        epochs: Steady epochs per side and round (after the cold one).
        batch_size: Batch size of both sides.
        rounds: Rounds, each timing both sides one after the other.
        cache: ``dataset.cache`` of the pipeline (auto, on, off).
        endpoint_override: S3-compatible endpoint of an s3:// dataset.

    Returns:
        Per round, cold and steady samples/s of both sides and their ratios (Ray Data /
        DataLoader) and the samples of an epoch on each side; the medians over rounds; rows,
        size, CPUs, whether the pipeline cached, and the warm-up of the new local Ray in seconds.
    """
    import torch

    from sislab.cluster.connect import connect
    from sislab.datasets.pipeline import cache_splits, iter_epoch_batches, split_dataset
    from sislab.datasets.storage import StorageOptions

    with tempfile.TemporaryDirectory(prefix="sislab-bench-") as tmp:
        if uri.startswith("synthetic://"):
            shards = Path(tmp) / "shards"
            write_synthetic(resolve(str(shards)), parse_synthetic_uri(uri))
            uri = str(shards)
        source = resolve(uri, StorageOptions(endpoint_override))
        pngs = _baseline_location(source, Path(tmp))
        try:
            keys, instance = _export_pngs(source, split, pngs)
            cpus = os.cpu_count() or 1
            # A new local Ray (never one a stale ray_current_cluster file names), logs to a file,
            # and its warm-up for the pipeline (a sweep's trials start after it: Tune's start).
            warm_up = connect(None, Path(tmp) / "ray.log", warm_up_data=True)
            start = time.perf_counter()
            if warm_up is not None:
                warm_up.join()
            start_s = time.perf_counter() - start
            spec = DatasetSpec(
                uri=uri,
                train_split=split,
                val_split=split,
                flip=False,
                cache=cache,
                endpoint_override=endpoint_override,
            )
            cached = cache_splits(spec, (size, size))

            def ray_data() -> Any:
                return split_dataset(spec, split, (size, size), train=False, seed=0, cache=cached)

            def ray_epoch(ds: Any) -> int:
                batches = iter_epoch_batches(
                    ds, epoch=0, batch_size=batch_size, seed=0, drop_last=False
                )
                return sum(int(b["image"].shape[0]) for b in batches)

            def dataloader() -> Any:
                return torch.utils.data.DataLoader(
                    PngFolder(pngs, keys, size, instance),
                    batch_size=batch_size,
                    num_workers=cpus,
                    multiprocessing_context="forkserver",
                    persistent_workers=True,
                )

            def loader_epoch(loader: Any) -> int:
                return sum(int(batch[0].shape[0]) for batch in loader)

            results = [
                {
                    "ray_data": _side(ray_data, ray_epoch, epochs),
                    "dataloader": _side(dataloader, loader_epoch, epochs),
                }
                for _ in range(rounds)
            ]
        finally:
            if pngs.uri.startswith("s3://"):
                pngs.fs.delete_dir(pngs.root)
    return _summary(results, len(keys), size, cpus, cached, start_s)


def _side(build: Callable[[], Any], epoch: Callable[[Any], int], epochs: int) -> dict:
    """Samples/s of a cold epoch (``build`` included: worker start, planning, the cache fill)
    and of ``epochs`` steady ones after it, and the samples of an epoch."""
    start = time.perf_counter()
    source = build()
    n = epoch(source)
    cold_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(epochs):
        if (k := epoch(source)) != n:
            log.warning("an epoch gave %d samples, the first %d", k, n)
    steady_s = time.perf_counter() - start
    return {
        "cold": n / cold_s,
        "steady": n * epochs / steady_s if epochs else float("nan"),
        "epoch": n,
    }


def _summary(
    results: list[dict], rows: int, size: int, cpus: int, cached: bool, start_s: float
) -> dict:
    rounds = []
    for r in results:
        ray, loader = r["ray_data"], r["dataloader"]
        rounds.append(
            {
                **{f"ray_data_{k}_samples_per_s": round(ray[k], 1) for k in ("cold", "steady")},
                **{
                    f"dataloader_{k}_samples_per_s": round(loader[k], 1) for k in ("cold", "steady")
                },
                "samples_per_epoch": {"ray_data": ray["epoch"], "dataloader": loader["epoch"]},
                "cold_ratio": round(ray["cold"] / loader["cold"], 3),
                "steady_ratio": round(ray["steady"] / loader["steady"], 3),
            }
        )
    return {
        "rows": rows,
        "size": size,
        "cpus": cpus,
        "dataloader_workers": cpus,
        "cached": cached,
        "ray_data_start_s": round(start_s, 2),
        "rounds": rounds,
        "cold_ratio": float(np.median([r["cold_ratio"] for r in rounds])),
        "steady_ratio": float(np.median([r["steady_ratio"] for r in rounds])),
    }
