"""MLflow records of one trial, written by rank 0 with the client API.

Rank 0 opens the trial's nested run itself (found again by the tag ``sislab.trial_id`` after a
restart, so a restarted trial appends to the same run); the Tune driver only marks it finished or
failed. This keeps MLflow out of the trial driver processes.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

FLUSH_EVERY_S = 5.0  # batch metric writes: one sqlite/HTTP round trip per few seconds, not per call
PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "sislab.trial_id"
KIND_TAG = "sislab.kind"
MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


def redact(text: str) -> str:
    """Remove credentials embedded in URIs (``scheme://user:secret@host``)."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings to dotted keys; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def params_of(spec_data: dict[str, Any]) -> list[Param]:
    """MLflow params: the flattened, resolved config, credentials removed, values truncated."""
    return [
        Param(key, redact(str(value))[:MAX_PARAM_CHARS])
        for key, value in sorted(flatten(spec_data).items())
    ]


def find_trial_run(client: MlflowClient, experiment_id: str, parent_run_id: str, trial_id: str):
    """The nested run of ``trial_id`` under the parent, or None."""
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}' and tags.`{TRIAL_TAG}` = '{trial_id}'",
        max_results=1,
    )
    return found[0] if found else None


def open_trial_run(
    client: MlflowClient,
    experiment_id: str,
    parent_run_id: str,
    trial_id: str,
    spec_data: dict[str, Any],
    overrides: dict[str, Any],
) -> str:
    """The trial's nested run: found by trial id under the parent, else created with its params."""
    existing = find_trial_run(client, experiment_id, parent_run_id, trial_id)
    if existing is not None:
        client.update_run(existing.info.run_id, status="RUNNING")
        return existing.info.run_id
    label = ", ".join(f"{k}={v}" for k, v in sorted(overrides.items()))
    run = client.create_run(
        experiment_id,
        run_name=f"{trial_id}" + (f" [{label}]" if label else ""),
        tags={PARENT_TAG: parent_run_id, TRIAL_TAG: trial_id, KIND_TAG: "trial"},
    )
    params = params_of(spec_data)
    for start in range(0, len(params), 100):  # MLflow caps a batch at 100 params
        client.log_batch(run.info.run_id, params=params[start : start + 100])
    return run.info.run_id


class MlflowTracker:
    """Buffers metrics and writes them in batches to the MLflow run ``run_id``.

    Args:
        client: MLflow client of the tracking store.
        run_id: The trial's nested run.
    """

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self._pending: list[Metric] = []
        self._last_flush = time.monotonic()

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        now_ms = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), now_ms, step) for k, v in metrics.items()]
        if time.monotonic() - self._last_flush > FLUSH_EVERY_S:
            self.flush()

    def log_artifact(self, path: Path, artifact_path: str) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path or None)

    def set_tags(self, tags: dict[str, str]) -> None:
        if tags:
            self.client.log_batch(
                self.run_id, tags=[RunTag(k, redact(str(v))) for k, v in tags.items()]
            )

    def flush(self) -> None:
        # MLflow caps a batch at 1000 metrics.
        while self._pending:
            chunk, self._pending = self._pending[:1000], self._pending[1000:]
            self.client.log_batch(self.run_id, metrics=chunk)
        self._last_flush = time.monotonic()
