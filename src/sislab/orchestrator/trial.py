"""One Tune trial = one Ray Train run: the function trainable that builds and fits a TorchTrainer.

Runs in the Tune trial actor (the Train driver), not on the Tune driver; it imports no MLflow (rank 0
opens the trial's run, the Tune driver closes it). Follows Ray's documented Train-in-Tune pattern: a
deterministic Train run name derived from the trial id (so a restarted trial resumes its Train
run), and every rank-0 report forwarded to Tune (``orchestrator.tune_report``), here with a Tune
checkpoint pointing at the Train checkpoint so that PBT can clone a trial.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ray.train
import ray.tune
from ray.train.torch import TorchConfig, TorchTrainer
from ray.train.v2._internal.callbacks.datasets import DatasetsCallback
from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback
from ray.util.queue import Queue

from sislab.orchestrator.tune_report import ReportToTrialDriver, fit_reporting_to_tune, read_pointer
from sislab.spec.overrides import resolve
from sislab.spec.spec import Spec
from sislab.trainers.checkpoint import CheckpointPointer
from sislab.trainers.credentials import TrackingCredentials, with_credentials
from sislab.trainers.tune_decisions import AwaitDecisions
from sislab.trainers.worker import TrialPayload, train_fn_per_worker

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepContext:
    """What every trial needs to know about its sweep (passed with ``tune.with_parameters``).

    Args:
        spec_data: The sweep's base spec as JSON data.
        tracking_uri: MLflow tracking URI.
        experiment_id: MLflow experiment of the sweep.
        parent_run_id: The sweep's parent run.
        storage_path: Ray storage root (local folder or bucket/prefix when a filesystem is given).
        storage_filesystem: pyarrow filesystem for S3 storage, else None.
        worker_fn: Function every Train worker runs (``sislab bench orchestration`` swaps in a
            trivial one to measure sislab's own overhead).
        credentials: The driver's MLflow credentials, exported into each Train worker's
            environment (``trainers.credentials``); in memory only, never in the spec or config.
        trial_fn: What a trial runs once its overrides are known: :func:`train_driver`
            (``sislab bench orchestration --trials N`` swaps in a trial without Ray Train).
        explicit_fields: Dotted ``train.*``/``losses.*`` fields the spec file sets
            (``recipes.apply.explicit_fields``): the recipe leaves them alone. ``spec_data`` is a
            dump, in which every field looks set.
        trials_at_once: Trials the sweep runs at once; each keeps its own decoded rows when
            ``dataset.cache`` is auto and they fit (``datasets.pipeline.cache_splits``).
    """

    spec_data: dict[str, Any]
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    storage_path: str
    storage_filesystem: Any = None
    worker_fn: Callable[[dict[str, Any]], None] = train_fn_per_worker
    credentials: TrackingCredentials | None = field(default=None, repr=False)
    trial_fn: Callable[[dict[str, Any], SweepContext], None] | None = None
    explicit_fields: frozenset[str] = frozenset()
    trials_at_once: int = 1


class TrialTrainer(TorchTrainer):
    """Ray's TorchTrainer less two helper actors that each cost a process per trial.

    - Ray Train's ``PlacementGroupCleaner``: the sweep's driver frees the groups of dead
      controllers itself (``orchestrator.placement_groups``), for every trial at once.
    - Ray Data's ``DatasetManager``, which Ray Train starts datasets or not, when the trial
      streams none (the synthetic dataset is rendered inside each worker).

    Each was about 2-3 CPU-seconds of process start-up per trial on the 2-core test machine.
    """

    def _create_default_callbacks(self):
        unwanted = (PlacementGroupCleanerCallback,) + (() if self.datasets else (DatasetsCallback,))
        return [cb for cb in super()._create_default_callbacks() if not isinstance(cb, unwanted)]


def scaling_config(spec: Spec) -> ray.train.ScalingConfig:
    """Ray Train scaling from the spec's ``resources``."""
    res = spec.resources
    per_worker: dict[str, float] = {**res.worker_resources, "CPU": res.cpus_per_worker}
    if res.use_gpu:
        per_worker["GPU"] = res.gpus_per_worker
    return ray.train.ScalingConfig(
        num_workers=res.num_workers,
        use_gpu=res.use_gpu,
        resources_per_worker=per_worker,
        placement_strategy=res.placement_strategy,
        accelerator_type=res.accelerator_type,
    )


def ddp_backend(spec: Spec) -> str:
    """The process-group backend of a trial's workers: nccl for whole GPUs, else gloo.

    With a fraction of a GPU per worker, two ranks of one trial may land on the same device,
    which NCCL refuses ("Duplicate GPU detected"); gloo all-reduces CUDA tensors as well.
    """
    res = spec.resources
    return "nccl" if res.use_gpu and res.gpus_per_worker >= 1 else "gloo"


def train_run(
    trial_id: str, pointer: CheckpointPointer | None
) -> tuple[str, CheckpointPointer | None]:
    """The Train run a trial (re)starts, and the donor checkpoint it starts from, if any.

    A trial's own Tune checkpoint (a restart, a resumed sweep, a PBT pause) continues the Train
    run it points to; Train restores that run's latest checkpoint. Another trial's (a PBT
    exploit) starts a new Train run from the donor's checkpoint, named after donor and epoch so
    that a restart of the same exploit finds it again.
    """
    if pointer is None:
        return f"train-{trial_id}", None
    if pointer.trial_id == trial_id:
        return pointer.run_name, None
    return f"train-{trial_id}-from-{pointer.trial_id}-e{pointer.epoch}", pointer


def trial_spec_of(spec_data: dict[str, Any], config: dict[str, Any]) -> Spec:
    """A trial's spec: the sweep's spec data (method switched), its preset resolved, the
    overrides applied; what the trial trains and logs.

    The sweep's spec arrives with ``preset: auto`` resolved by the preflight; a trial switched
    to another method (``search.methods``) starts from that method's defaults, ``preset: auto``
    included, which is resolved here for the dataset: its data holds only the fields the user
    set (see ``switch_method``), so the preset fills the others. The overrides come after and win.
    """
    base = Spec.model_validate(spec_data)
    if getattr(base.model, "preset", None) == "auto":
        from sislab.models.presets import with_resolved_preset
        from sislab.trainers.build import dataset_geometry

        model = with_resolved_preset(base.model, dataset_geometry(base))
        base = base.model_copy(update={"model": model})
    return resolve(base, config)


def trial_spec_with_recipe(
    spec_data: dict[str, Any], config: dict[str, Any], explicit: frozenset[str]
) -> tuple[Spec, dict[str, Any]]:
    """``trial_spec_of``, then the spec's ``train.recipe`` for the trial's method and dataset
    on the fields neither the spec file (``explicit``) nor the configuration set.

    Returns:
        The trial's spec and the recipe record for ``config/recipe.json``.
    """
    from sislab.models.presets import dataset_name
    from sislab.recipes.apply import apply_recipe
    from sislab.trainers.build import dataset_geometry

    spec = trial_spec_of(spec_data, config)
    dataset = None if spec.train.recipe == "none" else dataset_name(dataset_geometry(spec))
    return apply_recipe(spec, dataset, explicit, config)


def train_driver(config: dict[str, Any], context: SweepContext) -> None:
    """Tune trainable: resolve this trial's spec and fit its TorchTrainer."""
    trial_id = ray.tune.get_context().get_trial_id()
    spec, recipe = trial_spec_with_recipe(context.spec_data, config, context.explicit_fields)
    run_name, donor = train_run(trial_id, read_pointer(ray.tune.get_checkpoint()))
    payload = TrialPayload(
        spec=spec.model_dump(mode="json"),
        trial_id=trial_id,
        overrides=config,
        recipe=recipe,
        tracking_uri=context.tracking_uri,
        experiment_id=context.experiment_id,
        parent_run_id=context.parent_run_id,
        donor=donor,
    )
    datasets, dataset_config = None, None
    if not spec.dataset.uri.startswith("synthetic://"):
        # Synthetic layouts are rendered inside each worker; real datasets stream through Ray
        # Data from their shards, the train split divided among the workers, val whole.
        from sislab.datasets.pipeline import build_ray_datasets, cache_splits, open_dataset

        size = spec.dataset.image_size
        opened = open_dataset(spec.dataset)  # one manifest read
        cache = cache_splits(
            spec.dataset, size, trials_at_once=context.trials_at_once, opened=opened
        )
        datasets = build_ray_datasets(
            spec.dataset, size, spec.train.seed, cache=cache, opened=opened
        )
        dataset_config = ray.train.DataConfig(datasets_to_split=["train"])
    queue = Queue(maxsize=1, actor_options={"num_cpus": 0})
    worker_fn = with_credentials(context.worker_fn, context.credentials)
    decisions = None
    if spec.search.scheduler.pbt is not None:
        # PBT pauses trials and clones others into them: workers wait for Tune's answer to
        # each report, so that no epoch runs (and logs) past the point Tune restarts from.
        decisions = Queue(actor_options={"num_cpus": 0})
        worker_fn = AwaitDecisions(worker_fn, decisions)
    trainer = TrialTrainer(
        worker_fn,
        train_loop_config=payload.model_dump(),
        scaling_config=scaling_config(spec),
        torch_config=TorchConfig(backend=ddp_backend(spec)),
        datasets=datasets,
        dataset_config=dataset_config,
        run_config=ray.train.RunConfig(
            name=run_name,
            storage_path=context.storage_path,
            storage_filesystem=context.storage_filesystem,
            callbacks=[ReportToTrialDriver(queue)],
            failure_config=ray.train.FailureConfig(max_failures=spec.train.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(
                num_to_keep=spec.train.num_checkpoints_to_keep
            ),
        ),
    )
    fit_reporting_to_tune(trainer.fit, queue, trial_id, run_name, decisions)
