"""The synthetic dataset as a manifest (for ``synthetic://`` URIs) and as shards on disk."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from sislab.datasets.manifest import ClassInfo, Manifest, SplitInfo, save_manifest
from sislab.datasets.shards import DEFAULT_TARGET_BYTES, Row, ShardWriter, shard_rows
from sislab.datasets.storage import Location
from sislab.datasets.synthetic import SyntheticParams, class_families, render_sample_with_instances


def synthetic_manifest(
    params: SyntheticParams, splits: dict[str, SplitInfo] | None = None
) -> Manifest:
    """Manifest of a synthetic dataset: K classes, no don't-care, instance maps (one id per
    region or shape)."""
    families = class_families(params.classes, params.seed)
    classes = [
        ClassInfo(
            id=k,
            name=f"class{k:02d}_{fam.pattern}",
            colour=tuple(int(c) for c in np.rint(fam.colour)),
        )
        for k, fam in enumerate(families)
    ]
    return Manifest(
        name="synthetic-shapes",
        classes=classes,
        dontcare_id=None,
        has_instance=True,
        splits=splits or {},
    )


def png_bytes(array: np.ndarray) -> bytes:
    """Lossless PNG encoding of a uint8 image or label map."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def write_synthetic(
    location: Location, params: SyntheticParams, target_bytes: int = DEFAULT_TARGET_BYTES
) -> Manifest:
    """Render every train and val sample into shards under ``location`` and write the manifest.

    Keys and contents equal those of the ``synthetic://`` URI with the same parameters.
    """
    splits = {}
    for split in ("train", "val"):
        indices = params.split_range(split)
        if not len(indices):
            continue
        writer = ShardWriter(location, split, target_bytes, max_rows=shard_rows(len(indices)))
        for index in indices:
            image, label, instance = render_sample_with_instances(
                index,
                num_classes=params.classes,
                size=params.size,
                seed=params.seed,
                variation=params.variation,
            )
            writer.add(
                Row(
                    f"{index:08d}",
                    png_bytes(image),
                    png_bytes(label),
                    png_bytes(instance.astype(np.uint8)),
                    params.size,
                    params.size,
                )
            )
        splits[split] = SplitInfo(shards=writer.close())
    manifest = synthetic_manifest(params, splits)
    save_manifest(location, manifest)
    return manifest
