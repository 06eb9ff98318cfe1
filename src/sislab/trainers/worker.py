"""The Ray Train worker entry point: adapts ``ray.train`` to the loop's ``TrainContext``.

Runs in every Train worker process. Only global rank 0 writes to MLflow and reports checkpoints.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ray.train
import ray.train.torch
import torch
from pydantic import BaseModel
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sislab.datasets.prefetch import EpochPrefetcher
from sislab.spec.spec import Spec
from sislab.trainers import build
from sislab.trainers.checkpoint import CheckpointPointer
from sislab.trainers.cost import CostMeter, cost_config
from sislab.trainers.loop import run_training
from sislab.trainers.sync_batchnorm import convert_sync_batchnorm
from sislab.trainers.tracking import NullTracker, Tracker
from sislab.trainers.tune_decisions import wait_for_decision

logger = logging.getLogger(__name__)


class TrialPayload(BaseModel):
    """What the trial driver hands to every worker (``train_loop_config``).

    Args:
        spec: The trial's resolved spec, as JSON data.
        trial_id: Tune trial id.
        overrides: The trial's sampled values (dotted keys), for the run name.
        recipe: Where the recipe's fields got their values (``recipes.apply``), logged as
            ``config/recipe.json``; empty: no record.
        tracking_uri: MLflow tracking URI (None: no tracking).
        experiment_id: MLflow experiment of the sweep.
        parent_run_id: The sweep's parent run, under which rank 0 opens the trial's run.
        donor: With PBT, the checkpoint this Train run starts from when it has none of its own.
    """

    spec: dict[str, Any]
    trial_id: str
    overrides: dict[str, Any] = {}
    recipe: dict[str, Any] = {}
    tracking_uri: str | None = None
    experiment_id: str | None = None
    parent_run_id: str | None = None
    donor: CheckpointPointer | None = None


class RayContext:
    """``TrainContext`` over ``ray.train``'s context of the current worker.

    Args:
        donor: A PBT exploit's donor checkpoint, restored while the Train run has none.
    """

    def __init__(self, donor: CheckpointPointer | None = None) -> None:
        self.donor = donor
        context = ray.train.get_context()
        self.rank = context.get_world_rank()
        self.world_size = context.get_world_size()
        self.device = ray.train.torch.get_device()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None:
        checkpoint = (
            ray.train.Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir else None
        )
        ray.train.report(metrics, checkpoint=checkpoint)
        if self.is_main:
            wait_for_decision(int(metrics.get("epoch", 0)))

    def _best_target(self):
        from sislab.trainers.context import BEST_CHECKPOINT

        # The Train run's own storage (local folder or bucket), next to its checkpoint_* folders;
        # get_storage is a DeveloperAPI, the only way to learn where Ray keeps this run.
        storage = ray.train.get_context().get_storage()
        return storage.storage_filesystem, f"{storage.experiment_fs_path}/{BEST_CHECKPOINT}"

    def best_checkpoint_uri(self) -> str:
        filesystem, target = self._best_target()
        return f"s3://{target}" if filesystem.type_name == "s3" else target

    def save_best(self, checkpoint_dir: Path) -> None:
        from sislab.trainers.context import copy_checkpoint_files

        filesystem, target = self._best_target()
        copy_checkpoint_files(checkpoint_dir, target, filesystem)

    def _donor_checkpoint(self) -> ray.train.Checkpoint:
        from pyarrow.fs import FileType

        from sislab.errors import CheckpointError

        donor = self.donor
        filesystem = ray.train.get_context().get_storage().storage_filesystem
        if filesystem.get_file_info(donor.path).type == FileType.NotFound:
            raise CheckpointError(
                f"PBT: the checkpoint of trial {donor.trial_id} at epoch {donor.epoch} "
                f"({donor.path}) was deleted before this trial could clone it",
                fix="raise train.num_checkpoints_to_keep (or set it to null)",
            )
        return ray.train.Checkpoint(donor.path, filesystem=filesystem)

    @contextlib.contextmanager
    def latest_checkpoint(self) -> Iterator[Path | None]:
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None and self.donor is not None:
            checkpoint = self._donor_checkpoint()
        if checkpoint is None:
            yield None
            return
        with checkpoint.as_directory() as folder:
            yield Path(folder)


def key_digest(keys: list[str]) -> int:
    """Sum of the rows' 32-bit key hashes (mod 2**32): equal for the same rows in any order."""
    return sum(int(hashlib.sha256(k.encode()).hexdigest()[:8], 16) for k in keys) % 2**32


class RayDataSource:
    """Batches from this worker's share of the Ray Data train split (datasets other than synthetic).

    After each epoch rank 0 logs the rows all ranks trained on, ``data/epoch_rows``, and the
    digest of their keys, ``data/epoch_key_digest`` (``key_digest``), at the epoch's last
    iteration: with them ``sislab chaos`` checks that every epoch saw every row once.

    Batches are made ahead in a background thread, and the next epoch's pipeline starts when
    this one has produced its last batch (``datasets.prefetch``); the reduction over ranks and
    the records stay on the training thread.

    Args:
        spec: The trial's spec.
        world_size: Number of workers (epoch length = rows // world_size // batch).
        tracker: Where rank 0 logs the epoch's rows (other ranks: a null tracker).
        shard: This worker's ``ray.train.get_dataset_shard("train")``.
    """

    def __init__(self, spec: Spec, world_size: int, tracker: Tracker, shard: Any) -> None:
        from sislab.datasets.pipeline import split_rows

        self.spec = spec
        self.world_size = world_size
        self.tracker = tracker
        self.batch_size = build.per_worker_batch(spec)
        rows = split_rows(spec.dataset, spec.dataset.train_split)
        self.num_batches = rows // world_size // self.batch_size
        if spec.train.max_iters_per_epoch is not None:
            self.num_batches = min(self.num_batches, spec.train.max_iters_per_epoch)
        self.skipped_rows = 0
        self._shard = shard
        # Asked here, on the training thread: Ray Train's context is not the prefetch thread's.
        self._rank = ray.train.get_context().get_world_rank()
        self._prefetch = EpochPrefetcher(self._open_epoch, spec.train.epochs)

    def _open_epoch(self, epoch: int):
        from sislab.datasets.epochs import iter_epoch_batches

        return iter_epoch_batches(
            self._shard,
            epoch=epoch,
            batch_size=self.batch_size,
            seed=self.spec.train.seed,
            shuffle_buffer=self.spec.dataset.shuffle_buffer,
            num_batches=self.num_batches,
            rank=self._rank,
        )

    def batches(self, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
        self.skipped_rows = 0
        rows = digest = 0
        for batch in self._prefetch.epoch(epoch):
            rows += len(batch["key"])
            digest += key_digest(batch["key"])
            yield {k: v for k, v in batch.items() if k != "key"}
        self.skipped_rows = self._prefetch.opened(epoch).skipped_rows
        self._log_epoch_rows(epoch, rows, digest)

    def close(self) -> None:
        """Stop making batches ahead (the trial ends)."""
        self._prefetch.close()

    def _log_epoch_rows(self, epoch: int, rows: int, digest: int) -> None:
        import torch.distributed as dist

        totals = torch.tensor([rows, digest], dtype=torch.int64)
        if self.world_size > 1 and dist.is_initialized():
            moved = totals.to(ray.train.torch.get_device())  # NCCL reduces device tensors only
            dist.all_reduce(moved)
            totals = moved.cpu()
        self.tracker.log_metrics(
            {
                "data/epoch_rows": float(totals[0]),
                "data/epoch_key_digest": float(totals[1] % 2**32),
            },
            step=(epoch + 1) * self.num_batches,
        )

    def grid_batch(self, num: int) -> dict[str, torch.Tensor]:
        from sislab.datasets.epochs import iter_epoch_batches

        batches = iter_epoch_batches(
            ray.train.get_dataset_shard("val"),
            epoch=0,
            batch_size=num,
            seed=self.spec.train.seed,
            shuffle_buffer=0,
            drop_last=False,
            num_batches=1,
        )
        return {k: v for k, v in next(batches).items() if k != "key"}

    def eval_batches(
        self, num: int | None, batch_size: int, rank: int, world_size: int
    ) -> Iterator[dict[str, torch.Tensor]]:
        from sislab.datasets.epochs import iter_epoch_batches

        # Every worker reads the whole val split (it is not split among workers) and keeps its
        # rows, so the evaluated rows and their order do not depend on Ray Data's block layout.
        batches = iter_epoch_batches(
            ray.train.get_dataset_shard("val"),
            epoch=0,
            batch_size=batch_size * world_size,
            seed=self.spec.train.seed,
            shuffle_buffer=0,
            drop_last=False,
        )
        seen = 0
        for batch in batches:
            if num is not None and seen >= num:
                break
            rows = (
                batch["image"].shape[0] if num is None else min(batch["image"].shape[0], num - seen)
            )
            mine = list(range(rank, rows, world_size))
            seen += rows
            if mine:
                yield {k: v[mine] for k, v in batch.items() if k != "key"}


def make_wrap(device: torch.device, world_size: int, sync_bn: bool):
    """Module wrapper for this worker: device, cross-rank BN, DDP when there are several ranks."""

    def wrap(module: nn.Module) -> nn.Module:
        if world_size == 1:
            return module.to(device)
        if sync_bn:
            module = convert_sync_batchnorm(module, device)
        module = module.to(device)
        if not any(p.requires_grad for p in module.parameters()):
            return module
        device_ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=device_ids)

    return wrap


# Procedure notes kept as tags (a chip in the UI, a filter of the runs table: e.g.
# tags.`sislab.speed_switches` LIKE '%huge_pages=on%'); all of them are in the run's description.
NOTE_TAGS = ("sislab.perceptual_loss", "sislab.speed_switches")
# Evaluation-protocol tags kept (``sislab compare`` groups by the id); the whole record is the
# artifact ``config/eval_protocol.json``.
PROTOCOL_TAGS = ("sislab.protocol.id", "sislab.metrics.substitute_weights")


def _tracker(
    payload: TrialPayload, is_main: bool, notes: dict[str, str]
) -> tuple[Tracker, str | None]:
    """Rank 0's tracker on the trial's nested run (opened or found again), else a null tracker."""
    if not (is_main and payload.tracking_uri and payload.parent_run_id):
        return NullTracker(), None
    from mlflow.tracking import MlflowClient

    from sislab.trainers.mlflow_tracker import MlflowTracker, logged_steps
    from sislab.trainers.trial_run import open_trial_run

    client = MlflowClient(payload.tracking_uri)
    run_id = open_trial_run(
        client,
        payload.experiment_id,
        payload.parent_run_id,
        payload.trial_id,
        payload.spec,
        payload.overrides,
        notes,
        payload.recipe,
    )
    # A restarted or resumed trial (worker loss, `sislab resume`, PBT) appends to its run: the
    # steps it logged stay, the ones it redoes are not logged again. Under PBT, metrics wait for
    # the checkpoint that covers them: a trial paused or cloned into drops its epoch in flight.
    pbt = (payload.spec.get("search") or {}).get("scheduler", {}).get("pbt") is not None
    tracker = MlflowTracker(
        client, run_id, logged=logged_steps(client, run_id), hold_until_flush=pbt
    )
    return tracker, run_id


def _log_inputs(payload: TrialPayload, spec: Spec, run_id: str) -> None:
    """The training dataset as the run's MLflow dataset input (once per run)."""
    from mlflow.tracking import MlflowClient

    from sislab.trainers.trial_inputs import log_dataset_input

    log_dataset_input(MlflowClient(payload.tracking_uri), run_id, spec.dataset)


def _log_summary(tracker: Tracker, spec: Spec, geometry) -> None:
    """Model sizes and costs: ``model_summary.json`` and params ``summary.*`` (constants of the
    run, not charts); as ``model/*`` metrics only when the search optimises one of them."""
    from sislab.metrics.summary import summarize

    summary = summarize(spec.method, spec.model, geometry)
    data = summary.model_dump() if hasattr(summary, "model_dump") else dict(summary.__dict__)
    numbers = {k: float(v) for k, v in data.items() if isinstance(v, int | float)}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model_summary.json"
        path.write_text(json.dumps(data, indent=2, default=str))
        tracker.log_artifact(path, "")
    tracker.log_params(
        {f"summary.{k}": str(int(v)) if v.is_integer() else f"{v:.6g}" for k, v in numbers.items()}
    )
    objectives = (
        spec.search.metric if isinstance(spec.search.metric, list) else [spec.search.metric]
    )
    searched = {f"model/{k}": v for k, v in numbers.items() if f"model/{k}" in objectives}
    if searched:
        tracker.log_metrics(searched, step=0)


def _log_protocol(tracker: Tracker, tags: dict[str, str]) -> None:
    """Keep the protocol id and substitute weights as tags; the record goes to a JSON artifact."""
    tracker.set_tags({k: v for k, v in tags.items() if k in PROTOCOL_TAGS})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "eval_protocol.json"
        path.write_text(json.dumps(tags, indent=2))
        tracker.log_artifact(path, "config")


def _log_pbt_start(tracker: Tracker, spec: Spec, donor: CheckpointPointer | None) -> None:
    """Record the values PBT mutates as ``pbt/<field>`` (one point per Train run) and, after an
    exploit, the donor as the tag ``sislab.pbt.exploit.eNNNN``."""
    mutated = list(spec.search.scheduler.pbt.mutations)
    data = spec.model_dump(mode="json")
    values: dict[str, float] = {}
    for key in mutated:
        node = data
        for part in key.split("."):
            node = node[part]
        values[key] = float(node)
    tracker.log_metrics(
        {f"pbt/{k}": v for k, v in values.items()}, step=donor.iteration if donor else 0
    )
    if donor is not None:
        record = {
            "donor_trial": donor.trial_id,
            "donor_checkpoint": donor.path,
            "epoch": donor.epoch,
            "hyperparameters": values,
        }
        tracker.set_tags({f"sislab.pbt.exploit.e{donor.epoch:04d}": json.dumps(record)})


def train_fn_per_worker(config: dict[str, Any]) -> None:
    """Train one trial on this worker; called by Ray Train in every worker process."""
    started_s = time.perf_counter()  # the trial's device time counts from here (trainers.cost)
    payload = TrialPayload.model_validate(config)
    spec = Spec.model_validate(payload.spec)
    res = spec.resources
    meter = CostMeter(
        cost_config(res.use_gpu, res.num_workers, res.cpus_per_worker, res.gpus_per_worker,
                    res.trial_driver_cpus, spec.eval.target),
        started_s,
    )  # fmt: skip
    ctx = RayContext(payload.donor)
    synthetic = spec.dataset.uri.startswith("synthetic://")
    # Asking for the shard starts Ray Data's coordinator actor of the train split (a new worker
    # process, ~1.2 s on 2 cores): asked first, it starts while the models are built instead of
    # delaying the first batch. Every rank asks (a barrier), on the training thread.
    train_shard = None if synthetic else ray.train.get_dataset_shard("train")
    geometry = build.dataset_geometry(spec)
    probe = None
    if spec.train.micro_batch_size == "auto":
        from sislab.trainers.batch_probe import agree_over_ranks, probe_for_spec

        # Before the trial's own procedure exists: each try's peak is what training will need.
        probe = agree_over_ranks(probe_for_spec(spec, geometry, ctx.device), ctx.device)
    wrap = make_wrap(ctx.device, ctx.world_size, spec.train.sync_bn)
    procedure, notes = build.build_procedure(spec, geometry, ctx.device, ctx.world_size, wrap)
    constants = build.model_size(procedure)
    if probe is not None:
        procedure.accumulation = probe.accumulation
        # In every report, so the live view shows what the probe chose.
        constants |= {"train/micro_batch": probe.micro_batch_size,
                      "train/accumulation": probe.accumulation}  # fmt: skip
    tracker, run_id = _tracker(payload, ctx.is_main, notes)
    monitor = None
    if ctx.is_main:
        tracker.set_tags({k: v for k, v in notes.items() if k in NOTE_TAGS})
        tracker.log_params(meter.params())
        if run_id is not None:
            from sislab.trainers.trial_inputs import start_system_metrics

            monitor = start_system_metrics(
                run_id, payload.tracking_uri, spec.tracking.system_metrics_every_s
            )
        # A Train run restarting from its own checkpoint has recorded all of this already.
        if ray.train.get_checkpoint() is None:
            if probe is not None:
                tracker.log_params(probe.params())
            if payload.donor is None:
                _log_summary(tracker, spec, geometry)
                if run_id is not None:
                    _log_inputs(payload, spec, run_id)
            if spec.search.scheduler.pbt is not None:
                _log_pbt_start(tracker, spec, payload.donor)
    if synthetic:
        source = build.synthetic_source(spec, ctx.rank, ctx.world_size)
    else:
        source = RayDataSource(spec, ctx.world_size, tracker, train_shard)
    try:
        evaluator = build.evaluator(spec, geometry, ctx.device, ctx.is_main)
        if evaluator is not None and ctx.is_main:
            _log_protocol(tracker, evaluator.tags)
        run_training(
            build.loop_config(spec, geometry, run_id, constants),
            ctx=ctx,
            source=source,
            tracker=tracker,
            procedure=procedure,
            evaluator=evaluator,
            meter=meter,
        )
    finally:
        source.close()
        if monitor is not None:
            monitor.finish()
        tracker.close()  # MlflowTracker drains its queue (bounded wait)
