"""``sislab bench data``: decoded samples/s of the Ray Data pipeline against a plain baseline.

Both sides read the same images in the same run and do the same work per sample: decode the image
and label, resize them to ``size`` (bicubic / nearest), normalise to [-1, 1] and batch. The
baseline is a folder of PNGs read by a ``torch.utils.data.DataLoader`` with one worker process per
CPU (forkserver, as the Ray notes advise next to Ray); the pipeline is ``build_ray_datasets`` +
``iter_epoch_batches``. One warm-up epoch each (process and Ray Data start-up), then timed epochs.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from sislab.datasets.manifest import load_manifest
from sislab.datasets.preprocess import (
    decode_image,
    decode_label,
    resize_image,
    resize_map,
    to_model_arrays,
)
from sislab.datasets.shards import read_shard
from sislab.datasets.storage import resolve
from sislab.datasets.synthetic import parse_synthetic_uri
from sislab.datasets.synthetic_writer import write_synthetic
from sislab.spec.models import DatasetSpec

log = logging.getLogger(__name__)


class PngFolder:
    """Map-style torch dataset over ``<root>/<key>.png`` + ``<root>/<key>_label.png``."""

    def __init__(self, root: Path, keys: list[str], size: int) -> None:
        self.root, self.keys, self.size = root, keys, size

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int):
        import torch

        key = self.keys[i]
        hw = (self.size, self.size)
        image = resize_image(decode_image((self.root / f"{key}.png").read_bytes()), hw)
        label = resize_map(decode_label((self.root / f"{key}_label.png").read_bytes()), hw)
        img, lab = to_model_arrays(image[None], label[None])
        return torch.from_numpy(img[0]), torch.from_numpy(lab[0])


def _export_pngs(uri: str, split: str, dst: Path) -> list[str]:
    """Write every image and label of ``split`` as PNG files; returns the keys."""
    from PIL import Image

    location = resolve(uri)
    manifest = load_manifest(location)
    keys = []
    for shard in manifest.splits[split].shards:
        table = read_shard(location, shard)
        for key, image, label in zip(
            table.column("key").to_pylist(),
            table.column("image").to_pylist(),
            table.column("label").to_pylist(),
            strict=True,
        ):
            Image.fromarray(decode_image(image)).save(dst / f"{key}.png")
            Image.fromarray(decode_label(label)).save(dst / f"{key}_label.png")
            keys.append(key)
    return keys


def _rate(run_epoch, epochs: int) -> tuple[float, int]:
    run_epoch()  # warm-up
    start, n = time.perf_counter(), 0
    for _ in range(epochs):
        n += run_epoch()
    return n / (time.perf_counter() - start), n


def bench_data(
    uri: str, size: int, *, split: str = "train", epochs: int = 2, batch_size: int = 16
) -> dict:
    """Measure decoded samples/s of the Ray Data pipeline and of a folder-of-PNGs DataLoader.

    Args:
        uri: Sharded dataset (local or s3://) or a synthetic:// URI (rendered to shards first).
        size: Square output size.
        split: Split to read.
        epochs: Timed epochs per side (after one warm-up epoch).
        batch_size: Batch size of both sides.

    Returns:
        ``{"ray_data_samples_per_s", "dataloader_samples_per_s", "ratio", "rows", "size",
        "cpus", "dataloader_workers"}``; ratio = Ray Data / DataLoader.
    """
    import torch

    from sislab.cluster.connect import connect
    from sislab.datasets.pipeline import build_ray_datasets, iter_epoch_batches

    with tempfile.TemporaryDirectory(prefix="sislab-bench-") as tmp:
        if uri.startswith("synthetic://"):
            shards = Path(tmp) / "shards"
            write_synthetic(resolve(str(shards)), parse_synthetic_uri(uri))
            uri = str(shards)
        pngs = Path(tmp) / "pngs"
        pngs.mkdir()
        keys = _export_pngs(uri, split, pngs)

        cpus = os.cpu_count() or 1
        # A new local Ray (never one a stale ray_current_cluster file names), logs to a file.
        connect(None, Path(tmp) / "ray.log")
        spec = DatasetSpec(uri=uri, train_split=split, val_split=split, flip=False)
        ds = build_ray_datasets(spec, (size, size), seed=0)["val"]

        def ray_epoch() -> int:
            batches = iter_epoch_batches(
                ds, epoch=0, batch_size=batch_size, seed=0, drop_last=False
            )
            return sum(int(b["image"].shape[0]) for b in batches)

        loader = torch.utils.data.DataLoader(
            PngFolder(pngs, keys, size),
            batch_size=batch_size,
            num_workers=cpus,
            multiprocessing_context="forkserver",
            persistent_workers=True,
        )

        def loader_epoch() -> int:
            return sum(int(img.shape[0]) for img, _ in loader)

        ray_rate, n = _rate(ray_epoch, epochs)
        loader_rate, m = _rate(loader_epoch, epochs)
    if n != m:
        log.warning("pipeline saw %d samples, DataLoader %d", n, m)
    return {
        "rows": len(keys),
        "size": size,
        "cpus": cpus,
        "dataloader_workers": cpus,
        "ray_data_samples_per_s": round(ray_rate, 1),
        "dataloader_samples_per_s": round(loader_rate, 1),
        "ratio": round(ray_rate / loader_rate, 3) if loader_rate else float(np.inf),
    }
