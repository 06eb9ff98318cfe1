"""MLflow on the Tune driver: the sweep's parent run, and the final status of each trial's run.

Ray's MLflowLoggerCallback makes flat runs only (ray #19978), so sislab creates the parent run here;
rank 0 of each trial opens the trial's nested run (``sislab.trainers.mlflow_tracker``), and the
``TrialRunStatus`` callback marks it FINISHED or FAILED when Tune says the trial ended.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from mlflow.entities import RunStatus, RunTag
from mlflow.tracking import MlflowClient
from ray.tune import Callback

import sislab
from sislab.trainers.mlflow_tracker import KIND_TAG, find_trial_run, params_of, redact

logger = logging.getLogger(__name__)


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


def finish_run(client: MlflowClient, run_id: str, error: BaseException | None) -> None:
    """Mark a run FINISHED, or FAILED with the error's message as a tag."""
    if error is not None:
        client.log_batch(run_id, tags=[RunTag("sislab.error", redact(str(error))[:5000])])
    status = RunStatus.to_string(RunStatus.FAILED if error else RunStatus.FINISHED)
    client.set_terminated(run_id, status=status)


class TrialRunStatus(Callback):
    """Tune callback (on the driver) closing each trial's nested run with Tune's verdict.

    Args:
        tracking_uri: MLflow tracking URI.
        experiment_id: Experiment of the sweep.
        parent_run_id: The sweep's parent run.
    """

    def __init__(self, tracking_uri: str, experiment_id: str, parent_run_id: str) -> None:
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id

    def _close(self, trial, error: BaseException | None) -> None:
        client = MlflowClient(self.tracking_uri)
        run = find_trial_run(client, self.experiment_id, self.parent_run_id, trial.trial_id)
        if run is None:  # the trial failed before rank 0 opened its run
            return
        finish_run(client, run.info.run_id, error)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._close(trial, None)

    def on_trial_error(self, iteration, trials, trial, **info):
        error = RuntimeError(f"trial {trial.trial_id} failed; see {trial.local_path}")
        self._close(trial, error)
