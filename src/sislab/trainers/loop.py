"""The per-worker training loop: epochs of G/D steps, logging, sample grids, checkpoints, reports.

It knows nothing of Ray or MLflow: the runtime comes in as a ``TrainContext``, the records go out
through a ``Tracker``. Every rank runs the same iterations and calls ``ctx.report`` once per epoch;
only rank 0 writes checkpoints, grids and records.
"""

from __future__ import annotations

import logging
import resource
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sislab.errors import TrainingError
from sislab.trainers.batches import EpochSource
from sislab.trainers.checkpoint import (
    CheckpointMeta,
    load_checkpoint,
    rebase_hyperparameters,
    rng_state,
    save_checkpoint,
    save_meta,
    set_rng_state,
)
from sislab.trainers.context import TrainContext, scratch_dir, sum_over_ranks
from sislab.trainers.cost import CostMeter
from sislab.trainers.evaluation import Evaluator, improves
from sislab.trainers.iteration_clock import IterationClock
from sislab.trainers.nonfinite import StepGuard
from sislab.trainers.procedures.base import Procedure
from sislab.trainers.sample_grid import write_grid
from sislab.trainers.tracking import Tracker

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopConfig:
    """The loop's knobs, taken from the spec's ``train`` and ``eval`` sections.

    Args:
        method: Method name, stamped into checkpoints.
        epochs: Epochs to train.
        batch_size: Global batch size (all ranks together).
        log_every_iters: Log losses every N iterations.
        checkpoint_every_epochs: Checkpoint every N epochs (and after the last).
        eval_every_epochs: Write a sample grid every N epochs (and after the last).
        num_grid_samples: Rows of the sample grid.
        seed: Base seed; each (rank, epoch) derives its own.
        num_classes: Number of classes, for the grid palette.
        mlflow_run_id: Recorded in checkpoint metadata so a restart appends to the same run.
        config: The trial's resolved spec as JSON data, stored in every checkpoint's meta.json.
        on_nonfinite: ``stop`` or ``skip`` a G/D step whose loss or gradients are not finite.
        report_constants: Values added to every report (e.g. ``model/generator_params``), so that
            multi-objective searchers see the model size next to the losses.
        select_best_by: Evaluation metric that selects the best checkpoint (None: no selection).
        geometry: ``DatasetGeometry`` fields, written next to the best generator so that it can
            be rebuilt without the dataset.
    """

    method: str
    epochs: int
    batch_size: int
    log_every_iters: int
    checkpoint_every_epochs: int
    eval_every_epochs: int
    num_grid_samples: int
    seed: int
    num_classes: int
    mlflow_run_id: str | None = None
    config: dict | None = None
    on_nonfinite: str = "stop"
    report_constants: dict[str, float] | None = None
    select_best_by: str | None = None
    geometry: dict | None = None


@dataclass
class LoopState:
    """Progress of the loop; what a checkpoint restores (``nonfinite_steps`` is this process's).

    ``eval_metrics`` holds the latest evaluation (``eval/<name>``), carried into every report
    until the next one; ``best`` the metric, value, epoch, iteration, URI and scores of the best
    checkpoint so far; ``cost`` the device time so far (``CostMeter.state``).
    """

    epoch: int = 0
    iteration: int = 0
    images_seen: int = 0
    nonfinite_steps: int = 0
    eval_metrics: dict[str, float] = field(default_factory=dict)
    best: dict | None = None
    cost: dict | None = None


def derive_seed(seed: int, rank: int, epoch: int) -> int:
    """Seed of one rank in one epoch, so that a resumed epoch draws the same noise."""
    return (seed * 1_000_003 + rank * 7_919 + epoch * 104_729) % (2**63 - 1)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this process: CUDA allocator peak on GPU, resident set size on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _mean_over_ranks(values: dict[str, torch.Tensor], ctx: TrainContext) -> dict[str, float]:
    keys = sorted(values)
    stacked = torch.stack([values[k].detach().float().reshape(()) for k in keys]).to(ctx.device)
    stacked = sum_over_ranks(stacked, ctx) / ctx.world_size
    return {f"train/{k}": float(v) for k, v in zip(keys, stacked.cpu().tolist(), strict=True)}


def restore(
    procedure: Procedure, ctx: TrainContext, cfg: LoopConfig, tracker: Tracker | None = None
) -> LoopState:
    """Load the latest reported checkpoint into the procedure, if any; return where to continue.

    A checkpoint of another MLflow run (a PBT donor's) brings its weights and latest scores, but
    not its best checkpoint: that belongs to the donor's run, so this run's best starts again.
    A checkpoint of this run hands the metric points MLflow had not taken to ``tracker``.
    """
    with ctx.latest_checkpoint() as folder:
        if folder is None:
            return LoopState()
        meta, state = load_checkpoint(folder, cfg.method, map_location=ctx.device)
        procedure.load_state_dict(
            rebase_hyperparameters(state["procedure"], procedure.state_dict())
        )
        own = meta.mlflow_run_id == cfg.mlflow_run_id
        if ctx.is_main:
            set_rng_state(state["rng"])
            if own and tracker is not None and meta.unsent_metrics:
                tracker.resend(meta.unsent_metrics)
        logger.info("resumed from %s at epoch %d, iteration %d", folder, meta.epoch, meta.iteration)
        return LoopState(
            meta.epoch,
            meta.iteration,
            meta.images_seen,
            eval_metrics=dict(meta.eval_metrics or {}),
            best=meta.best if own else None,
            cost=meta.cost if own else None,
        )


def run_training(
    cfg: LoopConfig,
    *,
    ctx: TrainContext,
    source: EpochSource,
    tracker: Tracker,
    procedure: Procedure,
    evaluator: Evaluator | None = None,
    meter: CostMeter | None = None,
) -> LoopState:
    """Train ``procedure`` on ``source`` from the latest checkpoint (or from scratch) to the end.

    With an ``evaluator``, every evaluation epoch computes its metrics (all ranks take part), and
    a checkpoint that improves ``cfg.select_best_by`` is also copied to the run's best checkpoint.
    With a ``meter``, rank 0 logs the trial's ``cost/*`` after every epoch and at the end.

    Returns:
        The final loop state (epochs and iterations completed).

    Raises:
        TrainingError: A loss or gradient became non-finite and ``cfg.on_nonfinite`` is stop.
    """
    state = restore(procedure, ctx, cfg, tracker)
    meter = meter or CostMeter.disabled()
    meter.load(state.cost)
    guard = StepGuard(procedure)
    try:
        _train_epochs(cfg, ctx, source, tracker, procedure, state, guard, evaluator, meter)
    except BaseException:
        _log_cost(ctx, tracker, meter, state)  # a failing trial held its devices too
        raise
    finally:
        guard.close()
    if ctx.is_main and state.best and state.best.get("scores"):
        # One final set of the best checkpoint's scores (best/<metric>), not a second history
        # of eval/*: the runs table ranks trials by it.
        scores = {k.replace("eval/", "best/", 1): v for k, v in state.best["scores"].items()}
        tracker.log_metrics(scores, step=state.best.get("iteration", state.iteration))
    _log_cost(ctx, tracker, meter, state)
    tracker.flush()
    return state


def _log_cost(ctx, tracker: Tracker, meter: CostMeter, state: LoopState) -> None:
    cost = meter.metrics(state.images_seen) if ctx.is_main else {}
    if cost:
        tracker.log_metrics(cost, step=state.iteration)


def _check_nonfinite(cfg: LoopConfig, guard: StepGuard, losses, state: LoopState, tracker) -> bool:
    """Count this iteration's non-finite steps; True when its losses are fine to average."""
    bad, overflow = guard.nonfinite_sides(losses)
    if not (bad or overflow):
        return True
    state.nonfinite_steps += len(bad) + len(overflow)
    if bad and cfg.on_nonfinite == "stop":
        values = ", ".join(f"{k}={float(v):.4g}" for k, v in sorted(losses.items()))
        reason = (
            f"non-finite loss at iteration {state.iteration + 1} (epoch {state.epoch + 1}) in the "
            f"{'/'.join(s.upper() for s in bad)} step: {values}; the step was not applied"
        )
        tracker.set_tags({"sislab.stop_reason": reason, "sislab.error": reason})
        tracker.log_metrics({"train/nonfinite_steps": state.nonfinite_steps}, state.iteration + 1)
        tracker.flush()
        raise TrainingError(
            reason,
            fix="lower train.lr_g/lr_d, use precision fp32 or bf16, or set train.on_nonfinite: "
            "skip to drop such steps; resume restarts from the last checkpoint.",
        )
    logger.warning(
        "iteration %d: skipped %s step(s) with non-finite %s",
        state.iteration + 1,
        "/".join(s.upper() for s in bad + overflow),
        "loss" if bad else "fp16 gradients",
    )
    tracker.log_metrics({"train/nonfinite_steps": state.nonfinite_steps}, state.iteration + 1)
    return not bad


def _train_epochs(
    cfg, ctx, source, tracker, procedure, state: LoopState, guard: StepGuard, evaluator, meter
) -> None:
    if state.iteration:
        tracker.log_metrics(
            {
                "train/resumed_from_epoch": state.epoch,
                "train/resumed_from_iteration": state.iteration,
            },
            step=state.iteration,
        )
    grid_batch = source.grid_batch(cfg.num_grid_samples) if ctx.is_main else None
    logged_lr: dict[
        str, float
    ] = {}  # learning rates are logged when they change, not as flat lines
    clock = IterationClock()
    while state.epoch < cfg.epochs:
        epoch = state.epoch
        torch.manual_seed(derive_seed(cfg.seed, ctx.rank, epoch))
        epoch_sums: dict[str, torch.Tensor] = {}
        epoch_iters, finite_iters, epoch_start = 0, 0, time.perf_counter()
        window_start, window_iters = epoch_start, 0
        meter.begin("train")  # the epoch's iterations, less the waits for their batches
        clock.start_epoch()
        for batch in meter.timed_batches(source.batches(epoch)):
            clock.got_batch()
            batch = {k: v.to(ctx.device, non_blocking=True) for k, v in batch.items()}
            guard.begin()
            clock.start_step()
            losses = procedure.train_step(batch)
            clock.end_step()
            if _check_nonfinite(cfg, guard, losses, state, tracker):
                finite_iters += 1  # epoch means over the iterations whose losses are finite
                for key, value in losses.items():
                    epoch_sums[key] = epoch_sums.get(key, 0) + value.float()
            state.iteration += 1
            state.images_seen += cfg.batch_size
            epoch_iters += 1
            window_iters += 1
            if state.iteration % cfg.log_every_iters == 0:
                logged = _mean_over_ranks(losses, ctx)
                elapsed = time.perf_counter() - window_start
                logged["train/images_per_s"] = window_iters * cfg.batch_size / elapsed
                logged["system/peak_memory_mb"] = peak_memory_mb(ctx.device)
                rates = {f"lr/{k}": v for k, v in procedure.learning_rates().items()}
                logged.update({k: v for k, v in rates.items() if logged_lr.get(k) != v})
                logged_lr.update(rates)
                tracker.log_metrics(logged, step=state.iteration)
                window_start, window_iters = time.perf_counter(), 0
            clock.end_iteration()
        meter.end()
        if ctx.is_main and (timing := clock.metrics()):
            tracker.log_metrics(timing, step=state.iteration)
        procedure.end_epoch(epoch + 1)
        state.epoch += 1
        final = state.epoch == cfg.epochs
        # What Tune's searchers and schedulers see: epoch means over all ranks.
        metrics = {"epoch": float(state.epoch), "iteration": float(state.iteration)}
        metrics.update(cfg.report_constants or {})
        skipped = int(sum_over_ranks(torch.tensor([float(source.skipped_rows)]), ctx).item())
        if skipped:
            metrics["data/skipped_rows"] = float(skipped)
            tracker.log_metrics({"data/skipped_rows": float(skipped)}, step=state.iteration)
        if state.nonfinite_steps:
            metrics["train/nonfinite_steps"] = float(state.nonfinite_steps)
        if finite_iters:
            means = {k: v / finite_iters for k, v in epoch_sums.items()}
            metrics.update(_mean_over_ranks(means, ctx))
            metrics["train/images_per_s"] = (
                epoch_iters * cfg.batch_size / (time.perf_counter() - epoch_start)
            )
        metrics["system/peak_memory_mb"] = peak_memory_mb(ctx.device)  # this rank's, so far
        evaluating = final or state.epoch % cfg.eval_every_epochs == 0
        improved = False
        if evaluating and evaluator is not None:
            with meter.phase("eval"), clock.epoch_end_part("eval"):
                improved = _evaluate(cfg, ctx, source, tracker, procedure, state, evaluator)
            if ctx.is_main and (
                targets := meter.check_targets(state.eval_metrics, state.iteration)
            ):
                tracker.log_metrics(targets, step=state.iteration)
        metrics.update(state.eval_metrics)
        if ctx.is_main and evaluating:
            with clock.epoch_end_part("grid"):
                _log_grid(procedure, grid_batch, cfg, tracker, state)
        _log_cost(ctx, tracker, meter, state)
        state.cost = meter.state()
        due = final or improved or state.epoch % cfg.checkpoint_every_epochs == 0
        checkpointed = False
        if due:
            with clock.epoch_end_part("checkpoint"):
                # The last checkpoint is written even while MLflow is unreachable (after waiting
                # as long as the tracker's close would): it carries the points still unsent.
                if tracker.flush(last=final) or final:
                    _report_with_checkpoint(procedure, ctx, cfg, state, metrics, tracker, improved)
                    checkpointed = True
        if not checkpointed:
            # MLflow unreachable past the flush's wait: this epoch's records live only in this
            # process. A checkpoint now would let a crash resume past them (a gap in the run's
            # history); without one, a crash trains these epochs again and logs them again.
            ctx.report(metrics, None)
        if ctx.is_main:
            tracker.log_metrics(clock.epoch_end_metrics(), step=state.iteration)


def _evaluate(cfg, ctx, source, tracker, procedure, state: LoopState, evaluator) -> bool:
    """Run one evaluation (collective); on rank 0 log it and say whether it is a new best."""
    results = evaluator.evaluate(procedure, source, ctx)
    if not ctx.is_main:
        return False
    state.eval_metrics = {f"eval/{k}": v for k, v in results.items()}
    tracker.log_metrics(state.eval_metrics, step=state.iteration)
    state.eval_metrics["eval/epoch"] = float(state.epoch)  # Tune's reports only: the step says it
    metric = cfg.select_best_by
    if metric is None or metric not in results:
        return False
    best = state.best["value"] if state.best else None
    return improves(metric, results[metric], best)


def _log_grid(procedure, batch, cfg: LoopConfig, tracker: Tracker, state: LoopState) -> None:
    batch = {k: v.to(next(procedure.generator.parameters()).device) for k, v in batch.items()}
    generated = procedure.sample(batch)
    with tempfile.TemporaryDirectory(prefix="sislab-grid-") as tmp:
        path = Path(tmp) / f"epoch_{state.epoch:04d}_iter_{state.iteration:07d}.png"
        write_grid(path, batch["label"], generated, batch["image"], cfg.num_classes)
        tracker.log_image(path, "samples", state.iteration)


def _report_with_checkpoint(
    procedure, ctx, cfg: LoopConfig, state: LoopState, metrics, tracker: Tracker, improved: bool
) -> None:
    if not ctx.is_main:
        ctx.report(metrics, None)
        return
    meta = CheckpointMeta(
        method=cfg.method,
        epoch=state.epoch,
        iteration=state.iteration,
        images_seen=state.images_seen,
        mlflow_run_id=cfg.mlflow_run_id,
        config=cfg.config,
        eval_metrics=state.eval_metrics or None,
        best=state.best,
        cost=state.cost,
        unsent_metrics=tracker.unsent_metrics() or None,
    )
    with scratch_dir() as folder:
        save_checkpoint(folder, meta, {"procedure": procedure.state_dict(), "rng": rng_state()})
        if improved:
            _save_best(folder, meta, ctx, cfg, state, tracker, procedure)
        ctx.report(metrics, folder)


def _save_best(
    folder: Path, meta: CheckpointMeta, ctx, cfg: LoopConfig, state, tracker, procedure
) -> None:
    """Record this checkpoint as the best: a copy, its URI as a tag, its generator as the
    artifact ``best_generator/`` (its scores are logged as best/* once, at the end)."""
    from sislab.trainers.best_generator import ARTIFACT_DIR, write_best_generator

    metric = cfg.select_best_by
    value = state.eval_metrics[f"eval/{metric}"]
    uri = ctx.best_checkpoint_uri()
    scores = {k: v for k, v in state.eval_metrics.items() if k != "eval/epoch"}
    state.best = {
        "metric": metric,
        "value": value,
        "epoch": state.epoch,
        "iteration": state.iteration,
        "uri": uri,
        "scores": scores,
    }
    meta.best = state.best
    save_meta(folder, meta)
    ctx.save_best(folder)
    tracker.set_tags(
        {"sislab.best_checkpoint_uri": uri, "sislab.best_checkpoint_epoch": str(state.epoch)}
    )
    with tempfile.TemporaryDirectory(prefix="sislab-best-") as tmp:
        best = {"metric": metric, "value": value, "epoch": state.epoch}
        for path in write_best_generator(
            Path(tmp), procedure, cfg.config or {}, cfg.geometry or {}, best
        ):
            tracker.log_artifact(path, ARTIFACT_DIR)
    tracker.flush()
