"""What a PBT sweep's trials were trained with: each trial's exploits and effective schedule.

After an exploit a trial's weights are its donor's, trained under the donor's hyperparameters,
so the schedule that produced a trial's final model runs through its donors: the donor's
schedule up to the exploit's epoch, then the trial's own values. Built at the end of the sweep
from the trial runs' exploit tags (``sislab.pbt.exploit.eNNNN``) and initial params, and logged to
the parent run as ``pbt_schedules.json``. Runs on the Tune driver.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from sislab.orchestrator.compare import iter_trial_runs
from sislab.trainers.mlflow_tracker import TRIAL_TAG

logger = logging.getLogger(__name__)

EXPLOIT_TAG_PREFIX = "sislab.pbt.exploit.e"
ARTIFACT = "pbt_schedules.json"


@dataclass
class Lineage:
    """One trial's PBT record.

    Args:
        run_id: Its MLflow run.
        initial: The mutated fields' values it started with.
        exploits: ``{"epoch", "donor_trial", "donor_checkpoint", "hyperparameters"}`` records.
    """

    run_id: str
    initial: dict[str, float]
    exploits: list[dict[str, Any]] = field(default_factory=list)


def schedule(trials: dict[str, Lineage], trial_id: str, before: int | None = None) -> list[dict]:
    """The hyperparameters that trained ``trial_id``'s weights, as segments from an epoch on.

    Args:
        trials: Every trial's lineage.
        trial_id: The trial.
        before: Only the schedule up to this epoch (a donor's, at the time it was cloned).

    Returns:
        ``[{"from_epoch", "trial", "hyperparameters"}, ...]`` in epoch order; ``trial`` is the
        trial that trained that segment.
    """
    lineage = trials[trial_id]
    earlier = [x for x in lineage.exploits if before is None or x["epoch"] < before]
    if not earlier:
        return [{"from_epoch": 0, "trial": trial_id, "hyperparameters": dict(lineage.initial)}]
    last = max(earlier, key=lambda x: x["epoch"])
    # The donor's checkpoint at that epoch came from its schedule before the epoch (a trial is
    # never cloned into and cloned from in the same round), so the recursion ends.
    inherited = schedule(trials, last["donor_trial"], last["epoch"])
    own = {
        "from_epoch": last["epoch"],
        "trial": trial_id,
        "hyperparameters": last["hyperparameters"],
    }
    return [*inherited, own]


def read_lineages(
    client: MlflowClient, experiment_id: str, parent_run_id: str, mutated: list[str]
) -> dict[str, Lineage]:
    """Every trial's lineage, from the trial runs under the parent run."""
    trials: dict[str, Lineage] = {}
    for run in iter_trial_runs(client, experiment_id, parent_run_id):
        trial_id = run.data.tags.get(TRIAL_TAG)
        if not trial_id:
            continue
        params = run.data.params
        initial = {k: float(params[k]) for k in mutated if k in params}
        exploits = [
            json.loads(value)
            for key, value in run.data.tags.items()
            if key.startswith(EXPLOIT_TAG_PREFIX)
        ]
        exploits.sort(key=lambda x: x["epoch"])
        trials[trial_id] = Lineage(run.info.run_id, initial, exploits)
    return trials


def log_pbt_schedules(
    client: MlflowClient, experiment_id: str, parent_run_id: str, mutated: list[str]
) -> dict[str, Any]:
    """Log ``pbt_schedules.json`` (every trial's exploits and effective schedule) to the parent."""
    trials = read_lineages(client, experiment_id, parent_run_id, mutated)
    data = {
        "mutations": mutated,
        "trials": {
            trial_id: {
                "run_id": lineage.run_id,
                "initial": lineage.initial,
                "exploits": lineage.exploits,
                "schedule": schedule(trials, trial_id),
            }
            for trial_id, lineage in sorted(trials.items())
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ARTIFACT
        path.write_text(json.dumps(data, indent=2))
        client.log_artifact(parent_run_id, str(path))
    exploits = sum(len(t.exploits) for t in trials.values())
    logger.info("PBT: %d exploits over %d trials, schedules in %s", exploits, len(trials), ARTIFACT)
    return data
