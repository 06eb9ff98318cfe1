"""MLflow on the driver side: the sweep's parent run, each trial's nested run, redaction.

Ray's MLflowLoggerCallback makes flat runs only (ray #19978), so sislab creates the parent run on the
Tune driver and each trial's nested run in its Train driver, keyed by the Tune trial id: a restarted
trial finds its run again and appends to it.
"""

from __future__ import annotations

import logging
import re
import subprocess
from pathlib import Path
from typing import Any

from mlflow.entities import Param, RunStatus, RunTag
from mlflow.tracking import MlflowClient

import sislab

logger = logging.getLogger(__name__)

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


def git_commit() -> str:
    """Commit of the sislab checkout, or 'unknown' for an installed package."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(sislab.__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def ensure_experiment(client: MlflowClient, name: str, artifact_root: str | None) -> str:
    """Id of the experiment ``name``, created (with ``artifact_root``) when missing."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=artifact_root)


def create_parent_run(
    client: MlflowClient, experiment_id: str, name: str, spec_path: Path, spec_data: dict
) -> str:
    """Create the sweep's parent run with the spec as artifact and params; return its id."""
    run = client.create_run(
        experiment_id,
        run_name=f"{name} (sweep)",
        tags={
            KIND_TAG: "sweep",
            "sislab.version": sislab.__version__,
            "sislab.git_commit": git_commit(),
            "sislab.method": str(spec_data.get("method")),
        },
    )
    client.log_batch(run.info.run_id, params=params_of(spec_data))
    client.log_artifact(run.info.run_id, str(spec_path))
    return run.info.run_id


def get_or_create_trial_run(
    client: MlflowClient,
    experiment_id: str,
    parent_run_id: str,
    trial_id: str,
    spec_data: dict[str, Any],
    overrides: dict[str, Any],
) -> str:
    """The trial's nested run: found by trial id under the parent, else created with its params."""
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}' and tags.`{TRIAL_TAG}` = '{trial_id}'",
        max_results=1,
    )
    if found:
        run_id = found[0].info.run_id
        client.update_run(run_id, status="RUNNING")
        return run_id
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


def finish_run(client: MlflowClient, run_id: str, error: BaseException | None) -> None:
    """Mark a run FINISHED, or FAILED with the error's message as a tag."""
    if error is not None:
        client.log_batch(run_id, tags=[RunTag("sislab.error", redact(str(error))[:5000])])
    status = RunStatus.to_string(RunStatus.FAILED if error else RunStatus.FINISHED)
    client.set_terminated(run_id, status=status)
