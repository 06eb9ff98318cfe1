"""Preflight of a spec's dataset: the manifest is reachable and readable, its splits exist and
hold a batch per worker, and the model's class and instance fields fit it.

Reading an ``s3://`` manifest waits at most ``MANIFEST_TIMEOUT_S``; ``offline`` skips it. Imports no
Ray (the manifest is read in this process, as ``sislab data`` does).
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass

from sislab.datasets.manifest import Manifest
from sislab.datasets.presets import DATASET_PRESETS
from sislab.datasets.split_reader import open_uri
from sislab.datasets.storage import StorageOptions
from sislab.errors import DataError, SislabError
from sislab.models.geometry import DatasetGeometry
from sislab.spec.problems import Problem
from sislab.spec.spec import Spec

# A manifest is one small JSON file: a store that does not answer within this is unreachable.
MANIFEST_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class DatasetFacts:
    """What the preflight knows of a dataset: the geometry a trial builds its networks for
    (resolution filled in per trial) and the rows of each split."""

    num_classes: int
    use_instance: bool
    upsampling: str
    split_rows: dict[str, int]
    name: str | None = None
    split_shards: dict[str, int] = dataclasses.field(default_factory=dict)  # empty: synthetic

    def geometry(self, image_size: tuple[int, int]) -> DatasetGeometry:
        """The networks' geometry at a trial's ``dataset.image_size``."""
        return DatasetGeometry(
            self.num_classes,
            self.use_instance,
            image_size[0],
            image_size[1],
            self.upsampling,
            self.name,
        )


def _read_with_timeout(uri: str, storage: StorageOptions, timeout_s: float):
    result: dict = {}

    def read() -> None:
        try:
            result["value"] = open_uri(uri, storage)
        except Exception as exc:  # handed to the caller below
            result["error"] = exc

    # A daemon thread: a store that never answers must not keep the command from exiting.
    worker = threading.Thread(target=read, daemon=True, name="sislab-preflight-manifest")
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise TimeoutError
    if "error" in result:
        raise result["error"]
    return result["value"]


def dataset_facts(spec: Spec, timeout_s: float = MANIFEST_TIMEOUT_S) -> DatasetFacts:
    """Read the dataset's manifest (synthetic: its parameters).

    Raises:
        DataError: The manifest is missing, unreadable, invalid or did not arrive within
            ``timeout_s``; the message names the URI and the fix.
    """
    ds = spec.dataset
    storage = StorageOptions(ds.endpoint_override, ds.region)
    try:
        manifest, _, params = _read_with_timeout(ds.uri, storage, timeout_s)
    except TimeoutError:
        endpoint = ds.endpoint_override or "AWS_ENDPOINT_URL or AWS itself"
        raise DataError(
            f"no answer from {ds.uri} within {timeout_s:.0f} s reading its dataset.json "
            f"(endpoint: {endpoint})",
            fix="check that the store is reachable from here and dataset.endpoint_override; "
            "`sislab validate --offline` skips this check",
        ) from None
    except SislabError:
        raise
    except OSError as exc:
        raise DataError(
            f"cannot read {ds.uri}: {exc}",
            fix="check dataset.uri, dataset.endpoint_override and the AWS credentials",
        ) from None
    if params is not None:
        # As trainers.build.dataset_geometry: synthetic layouts train without instance edges.
        rows = {name: len(params.split_range(name)) for name in ("train", "val")}
        return DatasetFacts(params.classes, False, "normal", rows, "synthetic")
    return _facts_of(manifest)


def _facts_of(manifest: Manifest) -> DatasetFacts:
    preset = DATASET_PRESETS.get(manifest.name)
    return DatasetFacts(
        manifest.num_classes,
        manifest.has_instance,
        preset.upsampling if preset else "normal",
        {name: split.rows for name, split in manifest.splits.items()},
        manifest.name,
        {name: len(split.shards) for name, split in manifest.splits.items()},
    )


def split_problems(spec: Spec, facts: DatasetFacts) -> list[Problem]:
    """Splits the spec names that the dataset lacks, and a train split below one batch per
    worker."""
    ds, problems = spec.dataset, []
    for field in ("train_split", "val_split"):
        name = getattr(ds, field)
        if name not in facts.split_rows:
            problems.append(
                (
                    ("dataset", field),
                    f"dataset {ds.uri} has no split {name!r} (it has "
                    f"{sorted(facts.split_rows)}); name one of those",
                )
            )
    workers = spec.resources.num_workers
    per_worker = spec.train.batch_size // workers
    rows = facts.split_rows.get(ds.train_split)
    if rows is not None and rows // workers < per_worker:
        problems.append(
            (
                ("train", "batch_size"),
                f"the {ds.train_split} split has {rows} rows: {rows // workers} per worker "
                f"with {workers} workers, fewer than one batch of {per_worker}; lower "
                "train.batch_size or resources.num_workers, or use more data",
            )
        )
    return problems


def model_fit_problems(spec: Spec, facts: DatasetFacts) -> list[Problem]:
    """Model fields that name classes or instance maps the dataset does not have."""
    problems: list[Problem] = []
    ignore = getattr(spec.model, "ignore_class", None)
    if ignore is not None and ignore >= facts.num_classes:
        problems.append(
            (
                ("model", "ignore_class"),
                f"class {ignore} does not exist: the dataset has {facts.num_classes} classes "
                f"(ids 0..{facts.num_classes - 1}); use one of those or null",
            )
        )
    if getattr(spec.model, "use_instance", False) and not facts.use_instance:
        problems.append(
            (
                ("model", "use_instance"),
                f"dataset {spec.dataset.uri} has no instance maps (synthetic:// datasets train "
                "without them); set model.use_instance: false",
            )
        )
    return problems


# Below this many shards a split decodes on fewer cores than a small node has.
FEW_SHARDS = 4


def data_notes(spec: Spec, facts: DatasetFacts) -> list[str]:
    """What reading the dataset will cost: a train split of few shards (one Ray Data task per
    shard), and the decoded splits' size that ``dataset.cache`` weighs."""
    from sislab.datasets.pipeline import CACHE_AUTO_FRACTION, decoded_split_bytes

    ds = spec.dataset
    if not facts.split_shards:
        return []
    notes = []
    shards = facts.split_shards.get(ds.train_split, 0)
    if 0 < shards < FEW_SHARDS:
        notes.append(
            f"dataset: the {ds.train_split} split is {shards} shard(s): at most {shards} "
            f"task(s) read and decode it at once; `sislab data convert|synth --shard-mb` "
            "writes smaller shards"
        )
    if ds.cache != "off":
        size = decoded_split_bytes(ds, ds.image_size, facts.split_rows, facts.use_instance)
        h, w = ds.image_size
        when = (
            "kept after one pass (dataset.cache on)"
            if ds.cache == "on"
            else "dataset.cache auto keeps them when the copies of the trials at once take at "
            f"most {CACHE_AUTO_FRACTION:.0%} of the cluster's object store"
        )
        notes.append(
            f"dataset: decoded {ds.train_split} + {ds.val_split} at {h}x{w} take "
            f"{size / 1e6:.1f} MB; {when}"
        )
    return notes
