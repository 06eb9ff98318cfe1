"""``sislab run``: a validated spec becomes a Ray Tune sweep of Ray Train trials, tracked in MLflow.

Runs on the Tune driver (the machine where ``sislab run`` was typed, or the Jobs API driver).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import ray
from mlflow.tracking import MlflowClient
from ray import tune
from rich.console import Console

from sislab.cluster.address import check_reachable, find_cluster
from sislab.cluster.connect import (
    alive_node_count,
    check_reachable_from_workers,
    connect,
    is_local_address,
)
from sislab.errors import SislabError
from sislab.host_allocator import TRIAL_VARIABLES, trial_environment
from sislab.huge_pages import THP_ENV, default_huge_pages
from sislab.orchestrator import tracking
from sislab.orchestrator.credentials import stop_tune_credential_propagation
from sislab.orchestrator.live_view import LiveView
from sislab.orchestrator.mlflow_store import prepare_sqlite_store
from sislab.orchestrator.placement_groups import ReleaseOrphanedGroups
from sislab.orchestrator.preflight import check_cluster_resources
from sislab.orchestrator.resource_wait import ResourceWait
from sislab.orchestrator.run_dir import TUNE_EXPERIMENT, RunDir, SweepState
from sislab.orchestrator.search_algs import objectives, search_driver, tune_search
from sislab.orchestrator.search_algs import scheduler as make_scheduler
from sislab.orchestrator.trial import SweepContext
from sislab.orchestrator.trial_env import propagate_to_trials, set_for_trials
from sislab.recipes.apply import explicit_fields
from sislab.search_spaces.dsl import Choice
from sislab.search_spaces.space import grid_configurations
from sislab.search_spaces.validate import space_of
from sislab.spec.spec import Spec
from sislab.trainers.credentials import TrackingCredentials

if TYPE_CHECKING:
    from sislab.orchestrator.estimate import SweepEstimate

logger = logging.getLogger(__name__)


def streams_data(spec: Spec) -> bool:
    """Whether any trial of the sweep reads its dataset through Ray Data: a ``dataset.uri``
    of the spec or of its search (grid, choice, suite) that is not ``synthetic://``."""
    uris = [spec.dataset.uri]
    for config in grid_configurations(space_of(spec)):
        value = config.get("dataset.uri", spec.dataset.uri)
        uris += value.values if isinstance(value, Choice) else [value]
    return any(not str(uri).startswith("synthetic://") for uri in uris)


@dataclass(frozen=True)
class SweepOutcome:
    """What a finished sweep left behind."""

    run_dir: RunDir
    state: SweepState
    num_trials: int
    num_errors: int
    pareto_front: tuple[dict, ...] = ()  # multi-objective searches: non-dominated trial runs


# Ray Train's controller collects each worker's ``ray.train.report`` on a poll, every 2 s by default,
# and a worker's report queue holds one result: every report after the first, and the end of every
# trial, wait for the next poll (up to 2 s each). A poll is one small actor call per worker, so
# 0.5 s costs nothing measurable and takes seconds off every trial. An environment variable (a
# user's own value wins): Tune hands it to each trial driver, Train to its controller.
TRAIN_POLL_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"
TRAIN_POLL_S = "0.5"
# Tries of each request to the sweep's S3 storage (checkpoints, Tune's state): AWS's backoff with
# jitter, up to 20 s apart, rides out ~45 s of a store that does not answer (measured: 6 tries
# 23 s, 8 tries 45 s, against a closed port); pyarrow's default of 3 gives up after ~1.5 s, and a
# checkpoint that cannot be written fails the trial's workers.
STORAGE_S3_ATTEMPTS = 8


def ray_train_settings() -> None:
    """Set sislab's Ray defaults in this (the Tune driver's) process, before Ray starts: the
    Train poll interval, no S3 secrets copied into trainable runtime envs, torch's huge-page
    allocations on in the trials' processes (``sislab.huge_pages``; the environment may say 0)
    and tcmalloc preloaded into them where this machine has it (``sislab.host_allocator``; a
    remote node without it runs on glibc, which the trial's tag says)."""
    os.environ.setdefault(TRAIN_POLL_ENV, TRAIN_POLL_S)
    stop_tune_credential_propagation()
    default_huge_pages()
    propagate_to_trials(THP_ENV)
    set_for_trials(trial_environment(), replacing=TRIAL_VARIABLES)


def reuse_trial_actors(spec: Spec) -> bool:
    """Whether Tune may run a new trial in the process of a finished one (``reuse_actors``).

    A trial's process (its Train driver) imports torch and Ray Train and unpickles the trainable:
    seconds per trial that reuse saves. Only without a scheduler: a trial that ASHA stops early is
    still inside ``TorchTrainer.fit``, and its Train run ends only when Tune kills its process
    (likewise a trial PBT pauses or restarts from a donor).
    """
    scheduler = spec.search.scheduler
    return scheduler.asha is None and scheduler.pbt is None


def storage_target(spec: Spec, run_dir: RunDir) -> tuple[str, object | None]:
    """Ray storage path and filesystem: the spec's ``storage`` or the run folder."""
    uri = spec.storage.uri
    if not uri:
        return run_dir.default_storage, None
    if uri.startswith("s3://"):
        from sislab.datasets.storage import StorageOptions, s3_filesystem

        fs = s3_filesystem(
            StorageOptions(spec.storage.endpoint_override, spec.storage.region),
            max_attempts=STORAGE_S3_ATTEMPTS,
        )
        # With an explicit filesystem Ray wants the path without its scheme.
        return uri.removeprefix("s3://").rstrip("/"), fs
    return str(Path(uri).expanduser().resolve()), None


def max_concurrent(spec: Spec) -> int:
    """Trials at once: the spec's value, else what the cluster's CPUs/GPUs allow."""
    from sislab.orchestrator.estimate import concurrency

    return concurrency(spec, ray.cluster_resources())


def num_trials(num_samples: int, param_space: dict) -> int:
    """Trials of a Tuner: ``num_samples`` times each grid axis of ``param_space`` (PBT's)."""
    total = num_samples
    for value in param_space.values():
        if isinstance(value, dict) and "grid_search" in value:
            total *= len(value["grid_search"])
    return total


def make_trainable(spec: Spec, context: SweepContext):
    """The Tune trainable of a sweep (``sislab resume`` re-wraps the same one)."""
    return tune.with_resources(
        tune.with_parameters(search_driver, context=context, space=space_of(spec)),
        {"CPU": spec.resources.trial_driver_cpus},
    )


def _recorded(spec: Spec) -> Spec:
    """The spec the parent run's params show: with its ``train.recipe`` applied for its method
    and dataset, so that they read as the trials train (a search that switches methods gets each
    method's recipe in its trials; the parent then shows the base method's)."""
    from sislab.models.presets import dataset_name
    from sislab.recipes.apply import apply_recipe
    from sislab.trainers.build import dataset_geometry

    if spec.train.recipe == "none":
        return spec
    try:
        dataset = dataset_name(dataset_geometry(spec))
        return apply_recipe(spec, dataset, explicit_fields(spec))[0]
    except SislabError as exc:  # the trials report it; the parent keeps the spec's values
        logger.info("parent params without the recipe: %s", exc)
        return spec


def _start_tracking(spec: Spec, spec_path: Path, run_dir: RunDir) -> SweepState:
    spec = _recorded(spec)
    uri = spec.tracking.uri or run_dir.default_tracking_uri
    if not spec.tracking.uri:
        prepare_sqlite_store(run_dir.db_path)
    client = MlflowClient(uri)
    artifact_root = None if spec.tracking.uri else run_dir.artifact_root
    experiment_id = tracking.ensure_experiment(
        client, spec.tracking.experiment or spec.name, artifact_root
    )
    parent = tracking.create_parent_run(client, experiment_id, spec, spec_path)
    return SweepState(
        name=spec.name,
        tracking_uri=uri,
        experiment_id=experiment_id,
        parent_run_id=parent,
        storage_path="",
    )


def run_sweep(
    spec: Spec,
    spec_path: Path,
    *,
    run_dir: RunDir,
    address: str | None = None,
    console: Console | None = None,
    num_cpus: int | None = None,
    worker_fn=None,
    estimate: SweepEstimate | None = None,
    trial_fn=None,
) -> SweepOutcome:
    """Run the sweep the spec describes and wait for it.

    Args:
        spec: Validated spec, as ``check_before_run`` returns it (``preset: auto`` resolved:
            after this point every model field counts as set, so it can no longer be).
        spec_path: The YAML file (copied into the run folder and logged to MLflow).
        run_dir: A new run folder.
        address: Ray address (None: a local Ray).
        console: Where the live view draws.
        num_cpus: CPUs of a local Ray (None: all).
        worker_fn: Replacement of the Train worker function (benchmarks only).
        estimate: The ``SweepEstimate`` printed before launch, logged on the parent run as
            ``cost/estimate_*`` next to the actual ``cost/*`` (None: not made).
        trial_fn: Replacement of the whole Train run of a trial (benchmarks only).
    """
    shutil.copyfile(spec_path, run_dir.spec_path)
    ray_train_settings()
    if is_local_address(address):
        # MLflow's first contact with a new sqlite store migrates its schema (seconds): overlap
        # it with Ray's start-up.
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(_start_tracking, spec, run_dir.spec_path, run_dir)
            connect(address, run_dir.ray_log, num_cpus, warm_up_data=streams_data(spec))
            state = pending.result()
    else:
        # Before the MLflow parent run exists: a dead address leaves no half-made sweep.
        check_reachable(find_cluster(address))
        # A cluster may refuse the sweep: check before the MLflow parent run exists, so that a
        # refused sweep leaves no run marked RUNNING behind.
        connect(address, run_dir.ray_log, num_cpus)
        check_cluster_resources(spec, spec_path)
        check_reachable_from_workers(
            spec.tracking.uri or run_dir.default_tracking_uri,
            spec.storage.uri,
            alive_node_count(),
        )
        state = _start_tracking(spec, run_dir.spec_path, run_dir)
    storage_path, storage_fs = storage_target(spec, run_dir)
    state = state.model_copy(update={"storage_path": storage_path})
    run_dir.save_state(state)
    if estimate is not None:
        from sislab.orchestrator.cost import record_estimate

        record_estimate(MlflowClient(state.tracking_uri), state.parent_run_id, estimate)
    context = SweepContext(
        spec_data=spec.model_dump(mode="json"),
        tracking_uri=state.tracking_uri,
        experiment_id=state.experiment_id,
        parent_run_id=state.parent_run_id,
        storage_path=storage_path,
        storage_filesystem=storage_fs,
        credentials=TrackingCredentials.from_environ(os.environ),
        explicit_fields=explicit_fields(spec),
        trials_at_once=max_concurrent(spec),
    )
    if worker_fn is not None:
        context = dataclasses.replace(context, worker_fn=worker_fn)
    if trial_fn is not None:
        context = dataclasses.replace(context, trial_fn=trial_fn)
    searcher, num_samples, param_space = tune_search(spec, space_of(spec))
    metrics, modes = objectives(spec)
    view = LiveView(
        spec.train.epochs, console, metrics[0], modes[0], num_trials(num_samples, param_space)
    )
    # Ray suggests reuse_actors with PBT; sislab leaves it off (see reuse_trial_actors).
    warnings.filterwarnings("ignore", message="Consider boosting PBT performance")
    tuner = tune.Tuner(
        make_trainable(spec, context),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            num_samples=num_samples,
            search_alg=searcher,
            scheduler=make_scheduler(spec),
            max_concurrent_trials=context.trials_at_once,
            reuse_actors=reuse_trial_actors(spec),
        ),
        run_config=tune.RunConfig(
            name=TUNE_EXPERIMENT,
            storage_path=storage_path,
            storage_filesystem=storage_fs,
            callbacks=[
                view,
                ResourceWait(spec, console),
                ReleaseOrphanedGroups(),
                tracking.TrialRunStatus(
                    state.tracking_uri, state.experiment_id, state.parent_run_id
                ),
            ],
            # A trial whose driver process dies (a lost node, an OOM kill) starts again from
            # its last checkpoint, like a Train worker (``train.max_failures``).
            failure_config=tune.FailureConfig(max_failures=spec.train.max_failures),
            verbose=0,
        ),
    )
    results = tuner.fit()
    return finish(spec, run_dir, state, results)


def _record_outcome(client: MlflowClient, spec: Spec, state: SweepState) -> None:
    """The best trial, the cost and the description on the parent run; a failure here is
    logged, never lost work (the trials' runs hold everything)."""
    from sislab.orchestrator.compare import iter_trial_runs
    from sislab.orchestrator.cost import record_costs
    from sislab.orchestrator.parent_run import record_outcome

    try:
        runs = list(iter_trial_runs(client, state.experiment_id, state.parent_run_id))
        record_outcome(client, spec, state.parent_run_id, runs)
        record_costs(client, spec.cost, state.parent_run_id, runs)
    except Exception:  # MLflow unreachable: the sweep still ends with its status
        logger.exception("could not write the sweep's outcome to its parent run")


def finish(spec: Spec, run_dir: RunDir, state: SweepState, results) -> SweepOutcome:
    """Close the parent run (with the Pareto front of a multi-objective search, the schedules of
    a PBT sweep)."""
    errors = sum(1 for r in results if r.error is not None)
    status = "FAILED" if errors == len(results) and errors else "FINISHED"
    client = MlflowClient(state.tracking_uri)
    metrics, modes = objectives(spec)
    front: list[dict] = []
    if len(metrics) > 1:
        from sislab.orchestrator.compare import log_pareto_front

        trials = [dict(r.metrics or {}) for r in results]  # last report, with trial_id
        front = log_pareto_front(client, state, metrics, modes, trials)
    pbt = spec.search.scheduler.pbt
    if pbt is not None:
        from sislab.orchestrator.pbt_lineage import log_pbt_schedules

        log_pbt_schedules(client, state.experiment_id, state.parent_run_id, list(pbt.mutations))
    _record_outcome(client, spec, state)
    client.set_terminated(state.parent_run_id, status=status)
    state = state.model_copy(update={"status": status})
    run_dir.save_state(state)
    return SweepOutcome(run_dir, state, len(results), errors, tuple(front))
