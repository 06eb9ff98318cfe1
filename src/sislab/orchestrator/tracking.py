"""MLflow on the Tune driver: the sweep's parent run, and the final status of each trial's run.

Ray's MLflowLoggerCallback makes flat runs only (ray #19978), so sislab creates the parent run here;
rank 0 of each trial opens the trial's nested run (``sislab.trainers.mlflow_tracker``), and the
``TrialRunStatus`` callback marks it FINISHED or FAILED when Tune says the trial ended.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from mlflow.entities import RunStatus, RunTag
from mlflow.tracking import MlflowClient
from ray.tune import Callback

import sislab
from sislab.orchestrator.parent_run import (
    SEARCH_SPACE_ARTIFACT,
    search_params,
    search_space_record,
    varied_keys,
)
from sislab.orchestrator.pbt import trial_config
from sislab.orchestrator.trial_error import error_line, error_text
from sislab.spec.spec import Spec
from sislab.trainers.mlflow_tracker import KIND_TAG, find_trial_run, redact
from sislab.trainers.run_params import shared_params
from sislab.trainers.run_source import git_commit, source_tags
from sislab.trainers.trial_run import NOTE_TAG, log_params, open_trial_run

__all__ = ["git_commit"]  # kept importable from here (moved to trainers.run_source)

ERROR_TAG = "sislab.error"
ERROR_ARTIFACT = "error.txt"
NOTE_TAIL_LINES = 12  # of the traceback, in the failed run's description

logger = logging.getLogger(__name__)


def ensure_experiment(client: MlflowClient, name: str, artifact_root: str | None) -> str:
    """Id of the experiment ``name``, created (with ``artifact_root``) when missing."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=artifact_root)


def create_parent_run(client: MlflowClient, experiment_id: str, spec: Spec, spec_path: Path) -> str:
    """Create the sweep's parent run; return its id.

    Its params are what every trial shares (never the spec's value of a field the sweep varies)
    plus the search itself (``search.space`` as JSON); the spec and ``search_space.json`` are
    artifacts.
    """
    spec_data = spec.model_dump(mode="json")
    varied = varied_keys(spec)
    run = client.create_run(
        experiment_id,
        run_name=f"{spec.name} (sweep)",
        tags={
            KIND_TAG: "sweep",
            "sislab.version": sislab.__version__,
            "sislab.git_commit": git_commit(),
            "sislab.method": "varied" if "method" in varied else spec.method,
            **source_tags(spec.name),
        },
    )
    log_params(client, run.info.run_id, {**shared_params(spec_data, varied), **search_params(spec)})
    client.log_artifact(run.info.run_id, str(spec_path))
    client.log_text(
        run.info.run_id,
        redact(json.dumps(search_space_record(spec), indent=2)),
        SEARCH_SPACE_ARTIFACT,
    )
    return run.info.run_id


def finish_run(client: MlflowClient, run_id: str, error: BaseException | None) -> None:
    """Mark a run FINISHED, or FAILED with the error's message as a tag."""
    if error is not None:
        client.log_batch(run_id, tags=[RunTag("sislab.error", redact(str(error))[:5000])])
    status = RunStatus.to_string(RunStatus.FAILED if error else RunStatus.FINISHED)
    client.set_terminated(run_id, status=status)


class TrialRunStatus(Callback):
    """Tune callback (on the driver) closing each trial's nested run with Tune's verdict.

    A failed trial's run gets the error's own last line as the tag ``sislab.error`` and as its
    description (``mlflow.note.content``), and Tune's full error text as the artifact
    ``error.txt``; a trial that failed before rank 0 opened its run gets one created here, so
    that every trial of the sweep shows in the UI.

    Args:
        tracking_uri: MLflow tracking URI.
        experiment_id: Experiment of the sweep.
        parent_run_id: The sweep's parent run.
    """

    def __init__(self, tracking_uri: str, experiment_id: str, parent_run_id: str) -> None:
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id

    def on_trial_complete(self, iteration, trials, trial, **info):
        client = MlflowClient(self.tracking_uri)
        run = find_trial_run(client, self.experiment_id, self.parent_run_id, trial.trial_id)
        if run is not None:
            finish_run(client, run.info.run_id, None)

    def on_trial_error(self, iteration, trials, trial, **info):
        text = redact(error_text(trial)) or f"trial {trial.trial_id} failed; see {trial.local_path}"
        line = error_line(text)
        client = MlflowClient(self.tracking_uri)
        run = find_trial_run(client, self.experiment_id, self.parent_run_id, trial.trial_id)
        if run is None:  # the trial failed before rank 0 opened its run: its varied params
            overrides = trial_config(trial.config)
            run_id = open_trial_run(
                client, self.experiment_id, self.parent_run_id, trial.trial_id,
                spec_data=overrides, overrides=overrides,
            )  # fmt: skip
        else:
            run_id = run.info.run_id
        tail = "\n".join(text.splitlines()[-NOTE_TAIL_LINES:])
        note = (
            f"**Failed:** `{line}`\n\nLast lines of the traceback (all of it: artifact "
            f"`{ERROR_ARTIFACT}`):\n\n```text\n{tail}\n```\n"
        )
        opened_note = client.get_run(run_id).data.tags.get(NOTE_TAG)
        if opened_note:  # what rank 0 wrote when it opened the run stays below the failure
            note = f"{note}\n{opened_note}"
        client.log_batch(
            run_id, tags=[RunTag(ERROR_TAG, line), RunTag(NOTE_TAG, note)]
        )  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="sislab-error-") as tmp:
            path = Path(tmp) / ERROR_ARTIFACT
            path.write_text(text + "\n")
            client.log_artifact(run_id, str(path))
        client.set_terminated(run_id, status=RunStatus.to_string(RunStatus.FAILED))
