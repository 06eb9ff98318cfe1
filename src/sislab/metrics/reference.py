"""Reference statistics of real images (mean, covariance and features), cached on disk.

FID-t compares generated images with the train split's reference, FID-v with the val split's.
Computing a reference means running the Inception over thousands of real images, so the result
is kept under ``$SISLAB_CACHE_DIR/fid-reference/`` (default ``~/.cache/sislab``) as one ``.npz``
per key: the dataset's identity (its shards' sha256 from the manifest, the synthetic parameters,
or the bytes of an image folder), the split, the resolution the images were resized to, the
Inception weights' sha256 and the number of images. Files are written to a temporary name and
renamed, so concurrent trials never read a partial file. Substitute (random) Inception weights
are never cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from sislab.datasets.storage import StorageOptions
from sislab.errors import DataError
from sislab.metrics.features import DEFAULT_BATCH_SIZE, ImageSource, list_images, source_features
from sislab.metrics.fid import feature_statistics
from sislab.metrics.provenance import WeightsInfo

if TYPE_CHECKING:
    from sislab.spec.models import Spec

logger = logging.getLogger(__name__)

CACHE_VERSION = 1


def reference_split(kind: Literal["fid_t", "fid_v"], train_split: str, val_split: str) -> str:
    """The split FID-t (``fid_t``: train) or FID-v (``fid_v``: val) compares against."""
    return train_split if kind == "fid_t" else val_split


def cache_dir() -> Path:
    """Folder of cached references: ``$SISLAB_CACHE_DIR/fid-reference``."""
    root = Path(os.environ.get("SISLAB_CACHE_DIR", "~/.cache/sislab")).expanduser()
    return root / "fid-reference"


def source_identity(source: ImageSource) -> tuple[str, str]:
    """``(name, fingerprint)`` of a source's content, independent of where it is stored.

    Datasets with a manifest are fingerprinted by the sha256 of the split's shards (a copy on S3
    shares the local copy's cache), synthetic datasets by their parameters, folders by their
    file names and bytes.
    """
    manifest, _, params = source.open_dataset()
    digest = hashlib.sha256()
    if params is not None:
        digest.update(json.dumps(asdict(params), sort_keys=True).encode())
        return f"synthetic-{params.kind}", digest.hexdigest()
    if manifest is not None:
        split = manifest.splits.get(source.split or "")
        if split is None:
            raise DataError(
                f"dataset {source.location} has no split {source.split!r} "
                f"(it has {sorted(manifest.splits)})",
                fix="pass --split with one of those",
            )
        for shard in split.shards:
            digest.update(f"{shard.path}\0{shard.sha256}\n".encode())
        return manifest.name, digest.hexdigest()
    folder = Path(source.location)
    for path in list_images(folder):
        digest.update(path.name.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return folder.name or "folder", digest.hexdigest()


@dataclass(frozen=True)
class ReferenceStats:
    """Statistics of a set of real images.

    Attributes:
        mu: float64 ``[D]`` mean.
        sigma: float64 ``[D, D]`` covariance.
        features: float64 ``[N, D]`` features (for KID).
        key: What the statistics depend on (dataset, split, resolution, weights, count).
        path: The cache file (``None`` when not cached).
        from_cache: Whether they were read from the cache rather than computed.
    """

    mu: np.ndarray
    sigma: np.ndarray
    features: np.ndarray
    key: dict[str, Any]
    path: Path | None
    from_cache: bool

    @property
    def count(self) -> int:
        """Number of images."""
        return int(self.features.shape[0])


def _cache_path(key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{key['dataset']}-{key['split']}-{key['resolution']}")
    return cache_dir() / f"{name}-{digest}.npz"


def _read_cache(path: Path, key: dict[str, Any]) -> ReferenceStats | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            stored = json.loads(str(data["key"]))
            if stored != key:
                return None
            features = data["features"].astype(np.float64)
            return ReferenceStats(data["mu"], data["sigma"], features, key, path, True)
    except (OSError, ValueError, KeyError) as err:
        logger.warning("ignoring unreadable FID reference cache %s: %s", path, err)
        return None


def _write_cache(path: Path, stats: ReferenceStats) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
        # The network computes float32 features, so storing them as float32 loses nothing.
        np.savez(
            tmp,
            mu=stats.mu,
            sigma=stats.sigma,
            features=stats.features.astype(np.float32),
            key=np.array(json.dumps(stats.key, sort_keys=True)),
        )
    os.replace(tmp.name, path)


def reference_statistics(
    source: ImageSource,
    model: torch.nn.Module,
    weights: WeightsInfo,
    size: tuple[int, int] | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = DEFAULT_BATCH_SIZE,
    limit: int | None = None,
    use_cache: bool = True,
) -> ReferenceStats:
    """Statistics of a source's real images, read from or written to the cache.

    Args:
        source: The real images (usually a dataset split).
        model: The FID Inception ``weights`` describes.
        weights: Provenance of ``model``'s weights; its sha256 is part of the cache key.
        size: (H, W) the images are resized to (bicubic) before the network; ``None``: as stored.
        device: Where the network runs.
        batch_size: Images per forward pass.
        limit: Use only the first ``limit`` images.
        use_cache: Read and write the cache (never for substitute weights).

    Raises:
        DataError: The source holds fewer than 2 images, or cannot be read.
    """
    count = source.count() if limit is None else min(limit, source.count())
    if count < 2:
        raise DataError(f"{source.label} holds {count} image(s); FID needs at least 2")
    name, fingerprint = source_identity(source)
    key = {
        "version": CACHE_VERSION,
        "dataset": name,
        "fingerprint": fingerprint,
        "split": source.split or "",
        "resolution": "native" if size is None else f"{size[0]}x{size[1]}",
        "inception": weights.name,
        "inception_sha256": weights.sha256,
        "count": count,
    }
    cacheable = use_cache and not weights.substitute
    path = _cache_path(key)
    if cacheable and path.is_file():
        cached = _read_cache(path, key)
        if cached is not None:
            return cached
    features = source_features(model, source, device, batch_size, size, count)
    mu, sigma = feature_statistics(features)
    stats = ReferenceStats(mu, sigma, features, key, path if cacheable else None, False)
    if cacheable:
        _write_cache(path, stats)
    return stats


def train_statistics(
    spec: Spec,
    model: torch.nn.Module,
    weights: WeightsInfo,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """``(mu, sigma)`` of a trial's train split for FID-t, cached.

    The images are resized (bicubic) to ``dataset.image_size``, the resolution the generator
    produces, and the first ``eval.train_reference_images`` rows are used (all when null).
    """
    dataset = spec.dataset
    source = ImageSource(
        "dataset",
        dataset.uri,
        dataset.train_split,
        StorageOptions(dataset.endpoint_override, dataset.region),
    )
    stats = reference_statistics(
        source,
        model,
        weights,
        size=(dataset.image_size[0], dataset.image_size[1]),
        device=device,
        limit=spec.eval.train_reference_images,
    )
    return stats.mu, stats.sigma
