"""From a resolved spec to the pieces of a training run: geometry, procedure, data, loop config."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from sislab.datasets.synthetic import parse_synthetic_uri
from sislab.errors import SpecError
from sislab.metrics.weights import try_load_state_dict
from sislab.models.geometry import DatasetGeometry
from sislab.models.registry import get_method
from sislab.spec.spec import Spec
from sislab.trainers.batches import EpochSource, SyntheticSource
from sislab.trainers.evaluation import Evaluator, check_protocol, load_networks, run_protocol
from sislab.trainers.loop import LoopConfig
from sislab.trainers.procedures.base import Procedure, ProcedureRuntime
from sislab.trainers.procedures.groupdnet import GroupDNetProcedure
from sislab.trainers.procedures.oasis import OasisProcedure
from sislab.trainers.procedures.scgan import ScganProcedure
from sislab.trainers.procedures.spade import SpadeProcedure

PROCEDURES: dict[str, type] = {
    "spade": SpadeProcedure,
    "scgan": ScganProcedure,
    "oasis": OasisProcedure,
    "groupdnet": GroupDNetProcedure,
}


def dataset_geometry(spec: Spec) -> DatasetGeometry:
    """Label channels and training resolution of the spec's dataset."""
    height, width = spec.dataset.image_size
    if spec.dataset.uri.startswith("synthetic://"):
        params = parse_synthetic_uri(spec.dataset.uri)
        return DatasetGeometry(
            params.classes, use_instance=False, height=height, width=width, name="synthetic"
        )
    from sislab.datasets.pipeline import manifest_geometry

    return manifest_geometry(spec.dataset, height, width)


def per_worker_batch(spec: Spec) -> int:
    """Batch size of one worker (the spec's batch is global)."""
    return spec.train.batch_size // spec.resources.num_workers


def model_size(procedure: Procedure) -> dict[str, float]:
    """Trainable parameters of the procedure's generator, as reported with every epoch."""
    params = procedure.generator.parameters()
    return {"model/generator_params": float(sum(p.numel() for p in params if p.requires_grad))}


def loop_config(
    spec: Spec,
    geometry: DatasetGeometry,
    mlflow_run_id: str | None,
    report_constants: dict[str, float] | None = None,
) -> LoopConfig:
    """The loop's knobs from the spec."""
    return LoopConfig(
        method=spec.method,
        epochs=spec.train.epochs,
        batch_size=spec.train.batch_size,
        log_every_iters=spec.train.log_every_iters,
        checkpoint_every_epochs=spec.train.checkpoint_every_epochs,
        eval_every_epochs=spec.eval.every_epochs,
        num_grid_samples=spec.eval.num_grid_samples,
        seed=spec.train.seed,
        num_classes=geometry.num_classes,
        mlflow_run_id=mlflow_run_id,
        config=spec.model_dump(mode="json"),
        on_nonfinite=spec.train.on_nonfinite,
        report_constants=report_constants,
        select_best_by=spec.eval.best_metric,
        geometry=dataclasses.asdict(geometry),
    )


def evaluator(
    spec: Spec, geometry: DatasetGeometry, device: torch.device, is_main: bool
) -> Evaluator | None:
    """The trial's evaluator (None when ``eval.metrics`` is empty), its protocol checked.

    Raises:
        WeightsError: A metric's weights are missing (without ``eval.allow_substitute_weights``)
            or fail their sha256.
        SpecError: The run's evaluation differs from ``eval.protocol``.
    """
    if not spec.eval.metrics:
        return None
    from sislab.datasets.pipeline import split_rows

    nets = load_networks(spec.eval, spec.weights, geometry.num_classes, device)
    val_rows = split_rows(spec.dataset, spec.dataset.val_split)
    record = run_protocol(spec.eval, nets, spec.dataset.image_size, val_rows)
    if spec.eval.protocol:
        check_protocol(record, spec.eval.protocol)
    reference = None
    if is_main and "fid_train" in spec.eval.metrics:
        from sislab.metrics.reference import train_statistics

        reference = train_statistics(spec, nets.inception, nets.weights["inception"], device)
    return Evaluator(spec.eval, nets, spec.train.seed, reference, protocol=record)


def synthetic_source(spec: Spec, rank: int, world_size: int) -> EpochSource:
    """In-process synthetic batches for ``synthetic://`` datasets."""
    params = parse_synthetic_uri(spec.dataset.uri)
    if params.num // world_size < per_worker_batch(spec):
        raise SpecError(
            f"dataset.uri has num={params.num} training rows, fewer than one batch per worker "
            f"({per_worker_batch(spec)} x {world_size} workers)",
            fix="raise num in the synthetic:// URI or lower train.batch_size",
        )
    return SyntheticSource(
        params,
        spec.dataset.image_size,
        per_worker_batch(spec),
        rank,
        world_size,
        seed=spec.train.seed,
        flip=spec.dataset.flip,
        max_batches=spec.train.max_iters_per_epoch,
    )


def build_procedure(
    spec: Spec,
    geometry: DatasetGeometry,
    device: torch.device,
    world_size: int,
    wrap: Callable[[nn.Module], nn.Module],
) -> tuple[Procedure, dict[str, str]]:
    """Build the method's procedure; returns it with the notes the run must record as tags."""
    method = get_method(spec.method)
    vgg_state, missing = None, None
    if PROCEDURES[method.procedure].needs_vgg19(spec.model, spec.losses):
        vgg_state, missing = try_load_state_dict(
            "vgg19", spec.weights.paths, spec.weights.allow_download, spec.weights.sha256
        )
    runtime = ProcedureRuntime(device, world_size, wrap, vgg_state)
    torch.manual_seed(spec.train.seed)  # identical initial weights on every rank
    procedure = PROCEDURES[method.procedure](
        method, spec.model, geometry, spec.train, spec.losses, runtime
    )
    if missing:
        runtime.notes["sislab.perceptual_loss_reason"] = missing
    return procedure, runtime.notes
