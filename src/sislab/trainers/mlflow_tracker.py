"""MLflow records of one trial, written by rank 0 with the client API into an existing run."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from mlflow.entities import Metric, RunTag
from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

FLUSH_EVERY_S = 5.0  # batch metric writes: one sqlite/HTTP round trip per few seconds, not per call


class MlflowTracker:
    """Buffers metrics and writes them in batches to the MLflow run ``run_id``.

    Args:
        tracking_uri: MLflow tracking URI.
        run_id: The trial's (nested) run, created by the trial driver.
    """

    def __init__(self, tracking_uri: str, run_id: str) -> None:
        self.client = MlflowClient(tracking_uri)
        self.run_id = run_id
        self._pending: list[Metric] = []
        self._last_flush = time.monotonic()

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        now_ms = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), now_ms, step) for k, v in metrics.items()]
        if time.monotonic() - self._last_flush > FLUSH_EVERY_S:
            self.flush()

    def log_artifact(self, path: Path, artifact_path: str) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def set_tags(self, tags: dict[str, str]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def flush(self) -> None:
        # MLflow caps a batch at 1000 metrics.
        while self._pending:
            chunk, self._pending = self._pending[:1000], self._pending[1000:]
            self.client.log_batch(self.run_id, metrics=chunk)
        self._last_flush = time.monotonic()
