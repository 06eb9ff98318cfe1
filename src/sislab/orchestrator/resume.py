"""``sislab resume RUN_DIR``: continue an interrupted sweep under its MLflow parent run.

Ray Tune restores the experiment at ``{storage}/sweep`` (``Tuner.restore``): finished trials stay
finished, interrupted and errored ones start again, and each restarted trial's Train run (same
name ``train-{trial_id}``) continues from its last reported checkpoint. The trainable is rebuilt
from the run folder's ``spec.yaml`` and ``sweep.json``, so trials keep the same spec, MLflow
parent and storage. What Ray does not restore (documented in docs/search.md): the scheduler's
state (ASHA's rungs and PBT's population start empty, so a resumed trial is judged only against
results reported after the resume) and progress inside an epoch after the last checkpoint.
"""

from __future__ import annotations

import logging
import os

from mlflow.tracking import MlflowClient
from ray import tune
from rich.console import Console

from sislab.cluster.address import check_cluster_address
from sislab.cluster.connect import connect
from sislab.errors import SpecError
from sislab.orchestrator.preflight import check_before_run
from sislab.orchestrator.run_dir import TUNE_EXPERIMENT, RunDir
from sislab.orchestrator.sweep import (
    SweepOutcome,
    finish,
    make_trainable,
    max_concurrent,
    ray_train_settings,
    storage_target,
    streams_data,
)
from sislab.orchestrator.trial import SweepContext
from sislab.recipes.apply import explicit_fields
from sislab.spec.loader import load_spec
from sislab.trainers.credentials import TrackingCredentials

logger = logging.getLogger(__name__)

NOT_RESTORED = (
    "Ray restores the trials and the search algorithm, not the scheduler's state: ASHA's rungs "
    "and PBT's population start empty, so trials resumed mid-way are compared only with results "
    "reported after the resume; work after a trial's last checkpoint is trained again."
)


def experiment_path(storage_path: str) -> str:
    """Path of the Tune experiment under a storage root (``{storage}/sweep``)."""
    return f"{storage_path.rstrip('/')}/{TUNE_EXPERIMENT}"


def resume_sweep(
    run_dir: RunDir,
    *,
    address: str | None = None,
    console: Console | None = None,
    num_cpus: int | None = None,
) -> SweepOutcome:
    """Resume the sweep of ``run_dir`` and wait for it.

    Args:
        run_dir: The folder ``sislab run`` made (spec.yaml and sweep.json).
        address: Ray address (None: a local Ray).
        console: Where the live view draws (unused: the restored view draws on stdout).
        num_cpus: CPUs of a local Ray (None: all).

    Raises:
        SpecError: The sweep already finished, or Ray has no experiment state to restore.
    """
    state = run_dir.load_state()
    spec = load_spec(run_dir.spec_path)
    if state.status != "RUNNING":
        raise SpecError(
            f"the sweep in {run_dir.root} already ended ({state.status})",
            fix="start a new sweep with `sislab run SPEC`",
        )
    check_cluster_address(address)
    # The resolved spec (presets), as the sweep's first start handed its trials.
    spec = check_before_run(spec, run_dir.spec_path, address=address, num_cpus=num_cpus)
    ray_train_settings()
    connect(address, run_dir.ray_log, num_cpus, warm_up_data=streams_data(spec))
    _, storage_fs = storage_target(spec, run_dir)
    path = experiment_path(state.storage_path)
    if storage_fs is None and not tune.Tuner.can_restore(path):
        raise SpecError(
            f"no Tune experiment state in {path}: the sweep was stopped before its first trial",
            fix=f"start it again with `sislab run {run_dir.spec_path}`",
        )
    context = SweepContext(
        spec_data=spec.model_dump(mode="json"),
        tracking_uri=state.tracking_uri,
        experiment_id=state.experiment_id,
        parent_run_id=state.parent_run_id,
        storage_path=state.storage_path,
        storage_filesystem=storage_fs,
        credentials=TrackingCredentials.from_environ(os.environ),
        explicit_fields=explicit_fields(spec),
        trials_at_once=max_concurrent(spec),
    )
    MlflowClient(state.tracking_uri).set_tag(state.parent_run_id, "sislab.resumed", "true")
    logger.info(NOT_RESTORED)
    tuner = tune.Tuner.restore(
        path,
        trainable=make_trainable(spec, context),
        resume_unfinished=True,
        resume_errored=True,
        storage_filesystem=storage_fs,
    )
    results = tuner.fit()
    return finish(spec, run_dir, state, results)
