"""What rank 0 records about a trial's inputs and host: the dataset as an MLflow dataset input,
and MLflow's system metrics monitor (CPU, memory, disk, network, GPU) on the trial's run."""

from __future__ import annotations

import hashlib
import json
import logging

from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.tracking import MlflowClient

from sislab.spec.models import DatasetSpec

logger = logging.getLogger(__name__)

DIGEST_CHARS = 12  # MLflow shows a short digest; 12 hex digits tell datasets apart
CONTEXT_TAG = "mlflow.data.context"  # MLflow's tag for the role of a dataset input


def manifest_digest(shard_sha256s: list[str]) -> str:
    """Digest of a split: sha256 of its shards' sha256s in order, first ``DIGEST_CHARS`` digits."""
    return hashlib.sha256("\n".join(shard_sha256s).encode()).hexdigest()[:DIGEST_CHARS]


def dataset_entity(spec: DatasetSpec) -> Dataset:
    """The training split as an MLflow dataset: manifest name, URI, digest of its shards.

    A ``synthetic://`` dataset has no shards: its digest is that of the URI, which fixes it.
    """
    from sislab.datasets.split_reader import open_uri
    from sislab.datasets.storage import StorageOptions

    manifest, _, synthetic = open_uri(spec.uri, StorageOptions(spec.endpoint_override, spec.region))
    if synthetic is not None:
        digest, source_type = manifest_digest([spec.uri]), "synthetic"
        rows = len(synthetic.split_range(spec.train_split))
    else:
        split = manifest.split(spec.train_split, spec.uri, "set dataset.train_split")
        digest = manifest_digest([s.sha256 for s in split.shards])
        source_type = "s3" if spec.uri.startswith("s3://") else "local"
        rows = split.rows
    profile = {"split": spec.train_split, "rows": rows, "classes": manifest.num_classes}
    return Dataset(
        name=manifest.name,
        digest=digest,
        source_type=source_type,
        source=json.dumps({"uri": spec.uri}),
        profile=json.dumps(profile),
    )


def log_dataset_input(client: MlflowClient, run_id: str, spec: DatasetSpec) -> None:
    """Log the training split as the run's dataset input (the runs table's Dataset column)."""
    entity = dataset_entity(spec)
    client.log_inputs(run_id, [DatasetInput(entity, [InputTag(CONTEXT_TAG, "train")])])


def start_system_metrics(run_id: str, tracking_uri: str, every_s: float):
    """Start MLflow's system metrics monitor on ``run_id``, sampling every ``every_s`` seconds.

    Returns the monitor (call ``finish()`` at the end), or None when off (``every_s`` 0) or when
    ``psutil`` is missing. GPU metrics need ``nvidia-ml-py``; without a GPU they are left out.
    The monitor stops by itself once the run is no longer RUNNING.
    """
    if every_s <= 0:
        return None
    try:
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        monitor = SystemMetricsMonitor(
            run_id, sampling_interval=every_s, resume_logging=True, tracking_uri=tracking_uri
        )
    except ImportError as exc:  # psutil: a sislab dependency, but a user's env may lack it
        logger.warning("no system metrics: %s (pip install psutil)", exc)
        return None
    monitor.start()
    return monitor
