"""Opening a trial's MLflow run: its name, params, infrastructure artifact, source and description.

Runs on rank 0 of the trial (``trainers.worker``); the parent run uses ``log_params`` too.
"""

from __future__ import annotations

import json
from typing import Any

from mlflow.tracking import MlflowClient

from sislab.recipes.apply import RECIPE_ARTIFACT, recipe_summary
from sislab.trainers.mlflow_tracker import (
    KIND_TAG,
    NOTE_TAG,
    PARENT_TAG,
    TRIAL_TAG,
    find_trial_run,
    params_of,
    redact,
)
from sislab.trainers.run_names import trial_run_name, varies_method
from sislab.trainers.run_params import INFRASTRUCTURE_ARTIFACT, split_params
from sislab.trainers.run_source import source_tags

RECIPE_TAG = "sislab.recipe"


def log_params(client: MlflowClient, run_id: str, values: dict[str, Any]) -> None:
    """Log params in batches of 100 (MLflow's cap per call)."""
    params = params_of(values)
    for start in range(0, len(params), 100):
        client.log_batch(run_id, params=params[start : start + 100])


def log_json(client: MlflowClient, run_id: str, data: Any, artifact_file: str) -> None:
    """Write ``data`` as a JSON artifact (credentials in URIs removed)."""
    client.log_text(run_id, redact(json.dumps(data, indent=2, default=str)), artifact_file)


def trial_description(changed: dict[str, str], notes: dict[str, str]) -> str:
    """A trial's Markdown description: what its params mean where they differ from the spec."""
    lines = ["sislab trial. Params hold the values the run used:", ""]
    lines += [f"- `{key}` logged as 0: {why}" for key, why in sorted(changed.items())]
    lines += [f"- `{tag}`: {value}" for tag, value in sorted(notes.items()) if tag not in changed]
    lines += ["", f"Storage, tracking, retries and weight files: `{INFRASTRUCTURE_ARTIFACT}`."]
    return "\n".join(lines)


def open_trial_run(
    client: MlflowClient,
    experiment_id: str,
    parent_run_id: str,
    trial_id: str,
    spec_data: dict[str, Any],
    overrides: dict[str, Any],
    notes: dict[str, str] | None = None,
    recipe: dict[str, Any] | None = None,
) -> str:
    """The trial's nested run: found by trial id under the parent, else created.

    A new run is named after what the sweep varies (``method=clade lr_g=2e-4 · f150bb51``) and
    gets the params that can change a result, with the values the run used (``run_params``), its
    infrastructure fields as ``config/infrastructure.json``, MLflow's source tags (git commit)
    and a description saying which logged values differ from the spec and why.

    Args:
        client: MLflow client.
        experiment_id: Experiment of the sweep.
        parent_run_id: The sweep's parent run.
        trial_id: Tune trial id.
        spec_data: The trial's resolved spec as JSON data.
        overrides: The trial's sampled values (dotted keys).
        notes: The procedure's notes (``sislab.perceptual_loss``: off, and why).
        recipe: The ``train.recipe`` record (``recipes.apply``): logged as
            ``config/recipe.json`` with a one-line ``sislab.recipe`` tag.
    """
    existing = find_trial_run(client, experiment_id, parent_run_id, trial_id)
    if existing is not None:
        client.update_run(existing.info.run_id, status="RUNNING")
        return existing.info.run_id
    notes = notes or {}
    method = spec_data.get("method") if varies_method(spec_data.get("search", {})) else None
    params, infrastructure, changed = split_params(spec_data, notes)
    run = client.create_run(
        experiment_id,
        run_name=trial_run_name(trial_id, overrides, method),
        tags={
            PARENT_TAG: parent_run_id,
            TRIAL_TAG: trial_id,
            KIND_TAG: "trial",
            NOTE_TAG: trial_description(changed, notes),
            **source_tags(str(spec_data.get("name"))),
        },
    )
    log_params(client, run.info.run_id, params)
    log_json(client, run.info.run_id, infrastructure, INFRASTRUCTURE_ARTIFACT)
    if recipe:
        client.set_tag(run.info.run_id, RECIPE_TAG, recipe_summary(recipe))
        log_json(client, run.info.run_id, recipe, RECIPE_ARTIFACT)
    return run.info.run_id
