"""The Ray Train worker entry point: adapts ``ray.train`` to the loop's ``TrainContext``.

Runs in every Train worker process. Only global rank 0 writes to MLflow and reports checkpoints.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ray.train
import ray.train.torch
import torch
from pydantic import BaseModel
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sislab.spec.spec import Spec
from sislab.trainers import build
from sislab.trainers.loop import run_training
from sislab.trainers.sync_batchnorm import convert_sync_batchnorm
from sislab.trainers.tracking import NullTracker, Tracker

logger = logging.getLogger(__name__)


class TrialPayload(BaseModel):
    """What the trial driver hands to every worker (``train_loop_config``).

    Args:
        spec: The trial's resolved spec, as JSON data.
        trial_id: Tune trial id.
        tracking_uri: MLflow tracking URI (None: no tracking).
        mlflow_run_id: The trial's nested MLflow run.
    """

    spec: dict[str, Any]
    trial_id: str
    tracking_uri: str | None = None
    mlflow_run_id: str | None = None


class RayContext:
    """``TrainContext`` over ``ray.train``'s context of the current worker."""

    def __init__(self) -> None:
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

    @contextlib.contextmanager
    def latest_checkpoint(self) -> Iterator[Path | None]:
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            yield None
            return
        with checkpoint.as_directory() as folder:
            yield Path(folder)


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


def _tracker(payload: TrialPayload, is_main: bool) -> Tracker:
    if not (is_main and payload.tracking_uri and payload.mlflow_run_id):
        return NullTracker()
    from sislab.trainers.mlflow_tracker import MlflowTracker

    return MlflowTracker(payload.tracking_uri, payload.mlflow_run_id)


def _log_summary(tracker: Tracker, spec: Spec, geometry) -> None:
    from sislab.metrics.summary import summarize

    summary = summarize(spec.method, spec.model, geometry)
    data = summary.model_dump() if hasattr(summary, "model_dump") else dict(summary.__dict__)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model_summary.json"
        path.write_text(json.dumps(data, indent=2, default=str))
        tracker.log_artifact(path, "")
    numbers = {f"model/{k}": float(v) for k, v in data.items() if isinstance(v, int | float)}
    tracker.log_metrics(numbers, step=0)


def train_fn_per_worker(config: dict[str, Any]) -> None:
    """Train one trial on this worker; called by Ray Train in every worker process."""
    payload = TrialPayload.model_validate(config)
    spec = Spec.model_validate(payload.spec)
    ctx = RayContext()
    geometry = build.dataset_geometry(spec)
    wrap = make_wrap(ctx.device, ctx.world_size, spec.train.sync_bn)
    procedure, notes = build.build_procedure(spec, geometry, ctx.device, ctx.world_size, wrap)
    tracker = _tracker(payload, ctx.is_main)
    if ctx.is_main:
        tracker.set_tags(notes)
        if ray.train.get_checkpoint() is None:
            _log_summary(tracker, spec, geometry)
    source = build.synthetic_source(spec, ctx.rank, ctx.world_size)
    run_training(
        build.loop_config(spec, geometry, payload.mlflow_run_id),
        ctx=ctx,
        source=source,
        tracker=tracker,
        procedure=procedure,
    )
