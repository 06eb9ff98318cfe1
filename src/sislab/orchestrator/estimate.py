"""``sislab estimate``: the device-hours (and money) of a sweep, from a few timed iterations.

Runs on the machine where the command is typed, before anything is launched. The sweep's trials
are enumerated as the searcher will draw them; trials that build the same networks at the same
per-worker batch, resolution, switches and evaluation share one timing (a "configuration"). For
each configuration it builds the trial's procedure as a worker does (``build.build_procedure``,
one process, no DDP), times ``iters`` training iterations after ``warmup`` on a synthetic batch
of the trial's geometry (``bench.time_iterations``, the ``sislab bench train`` path), and times
one evaluation (the first, which also extracts the real images' features) on synthetic val rows,
this worker's share of them, counted for every evaluation. A trial's wall time is
set-up + iterations × s/iter + evaluations; its device-hours are the devices it holds
(``trainers.cost``) × that; the sweep's wall time is the trials' total ÷ concurrency.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sislab.datasets.synthetic import SyntheticParams, parse_synthetic_uri
from sislab.search_spaces.space import configurations
from sislab.search_spaces.trial_spec import trial_spec
from sislab.search_spaces.validate import space_of
from sislab.spec.models import CostSpec
from sislab.spec.spec import Spec
from sislab.trainers import build
from sislab.trainers.cost import SECONDS_PER_HOUR, cost_config


@dataclass(frozen=True)
class ConfigEstimate:
    """One distinct configuration: its timings and the trials that share them.

    ``eval_s`` is one evaluation's seconds (None: no evaluation).
    """

    label: str
    trial_wall_s: list[float]
    kind: str
    devices: float
    setup_s: float
    s_per_iter: float
    iters_per_trial: list[int]
    evals_per_trial: list[int]
    eval_s: float | None

    @property
    def device_hours(self) -> float:
        """Devices held × the trials' wall hours."""
        return self.devices * sum(self.trial_wall_s) / SECONDS_PER_HOUR


@dataclass(frozen=True)
class SweepEstimate:
    """The expected cost of a whole sweep."""

    name: str
    num_trials: int
    concurrency: int
    configs: list[ConfigEstimate]
    prices: CostSpec
    caveats: list[str] = field(default_factory=list)

    def hours(self, kind: str) -> float:
        """Device-hours of ``kind`` (gpu or cpu) over all trials."""
        return sum(c.device_hours for c in self.configs if c.kind == kind)

    @property
    def wall_s(self) -> float:
        """Expected wall time: the trials' total ÷ concurrency, at least the longest trial."""
        walls = [w for c in self.configs for w in c.trial_wall_s]
        return max(sum(walls) / self.concurrency, max(walls, default=0.0))

    @property
    def total(self) -> float | None:
        """Money at the spec's prices (None: no price given)."""
        return price(self.prices, self.hours("gpu"), self.hours("cpu"))

    def metrics(self) -> dict[str, float]:
        """The parent run's ``cost/estimate_*`` metrics."""
        out = {
            "cost/estimate_gpu_hours": self.hours("gpu"),
            "cost/estimate_cpu_hours": self.hours("cpu"),
            "cost/estimate_wall_s": self.wall_s,
        }
        if self.total is not None:
            out["cost/estimate_total"] = self.total
        return out


def price(prices: CostSpec, gpu_hours: float, cpu_hours: float) -> float | None:
    """``gpu_hours`` and ``cpu_hours`` at ``prices`` (a kind without a price counts 0; None
    when neither has one)."""
    if prices.gpu_hour is None and prices.cpu_hour is None:
        return None
    return gpu_hours * (prices.gpu_hour or 0.0) + cpu_hours * (prices.cpu_hour or 0.0)


def concurrency(spec: Spec, available: dict[str, float]) -> int:
    """Trials at once: the spec's ``max_concurrent_trials``, else what ``available`` CPUs/GPUs
    allow (``sislab run`` passes the cluster's resources, ``sislab estimate`` this machine's)."""
    if spec.search.max_concurrent_trials:
        return spec.search.max_concurrent_trials
    res = spec.resources
    if res.use_gpu:
        per_trial = res.num_workers * res.gpus_per_worker
        return max(1, math.floor(available.get("GPU", 0) / per_trial))
    per_trial = res.num_workers * res.cpus_per_worker + res.trial_driver_cpus
    if not spec.dataset.uri.startswith("synthetic://"):
        # Leave room for at least one Ray Data read task per trial, or ingest starves.
        per_trial += spec.dataset.read_cpus
    return max(1, math.floor(available.get("CPU", 1) / per_trial + 1e-9))


def local_resources(num_cpus: int | None) -> dict[str, float]:
    """CPUs (``num_cpus`` or all) and GPUs of this machine, as a local Ray would see them."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return {"CPU": float(num_cpus or os.cpu_count() or 1), "GPU": float(gpus)}


def trial_specs(spec: Spec) -> tuple[list[Spec], list[str]]:
    """The sweep's trial specs as its searcher draws them, and caveats on how exact that is."""
    space = space_of(spec)
    caveats = []
    search = spec.search
    if search.algorithm == "optuna" and space.has_random:
        caveats.append("optuna: sampled values drawn at random, not by TPE")
    if search.scheduler.asha is not None:
        caveats.append("ASHA stops trials early: every trial counted to its last epoch (an upper "
                       "bound)")  # fmt: skip
    if search.scheduler.pbt is not None:
        caveats.append("PBT: each trial timed with its initial values")
    configs = configurations(space, search.num_samples, spec.train.seed)
    if search.algorithm == "optuna":  # num_samples is the number of trials
        configs = configs[: search.num_samples]
    geometry = build.dataset_geometry(spec)
    return [trial_spec(spec, c, geometry) for c in configs] or [spec], caveats


def timing_key(spec: Spec) -> str:
    """What a trial's s/iter and evaluation time depend on; trials with the same key share one
    timing (learning rates, seeds, epochs do not change them)."""
    data = spec.model_dump(mode="json")
    train, res = data["train"], data["resources"]
    return json.dumps(
        {
            "method": data["method"],
            "model": data["model"],
            "losses": data["losses"],
            "dataset": {k: data["dataset"][k] for k in ("uri", "image_size")},
            "train": {
                k: train[k]
                for k in (
                    "batch_size",
                    "precision",
                    "channels_last",
                    "compile",
                    "reuse_host_memory",
                )
            },
            "resources": {k: res[k] for k in ("num_workers", "use_gpu", "cpus_per_worker")},
            "eval": data["eval"],
        },
        sort_keys=True,
    )


def iters_per_epoch(spec: Spec) -> int:
    """Iterations of one epoch on each worker (as ``SyntheticSource``/``RayDataSource`` count)."""
    workers = spec.resources.num_workers
    if spec.dataset.uri.startswith("synthetic://"):
        rows = parse_synthetic_uri(spec.dataset.uri).num
    else:
        from sislab.datasets.pipeline import split_rows

        rows = split_rows(spec.dataset, spec.dataset.train_split)
    iters = rows // workers // build.per_worker_batch(spec)
    cap = spec.train.max_iters_per_epoch
    return iters if cap is None else min(iters, cap)


def num_evaluations(spec: Spec) -> int:
    """Evaluations of one trial: every ``eval.every_epochs`` epochs and after the last."""
    if not spec.eval.metrics:
        return 0
    epochs, every = spec.train.epochs, spec.eval.every_epochs
    return epochs // every + (1 if epochs % every else 0)


def val_rows(spec: Spec) -> int:
    """Val rows one evaluation generates (all workers together)."""
    if spec.dataset.uri.startswith("synthetic://"):
        rows = parse_synthetic_uri(spec.dataset.uri).val
    else:
        from sislab.datasets.pipeline import split_rows

        rows = split_rows(spec.dataset, spec.dataset.val_split)
    return rows if spec.eval.num_samples is None else min(rows, spec.eval.num_samples)


def _device(spec: Spec) -> torch.device:
    return torch.device("cuda" if spec.resources.use_gpu and torch.cuda.is_available() else "cpu")


def time_configuration(spec: Spec, iters: int, warmup: int) -> tuple[float, float, float | None]:
    """Time one trial's set-up, training iteration and evaluations in this process.

    A CPU worker runs ``floor(cpus_per_worker)`` (at least 1) torch threads, as Ray sets them;
    the timing uses as many.

    Returns:
        Set-up seconds (networks, evaluator), median s/iter and one evaluation's seconds (None
        without evaluation).
    """
    from sislab.trainers.batches import SyntheticSource
    from sislab.trainers.bench import synthetic_batch, time_iterations
    from sislab.trainers.context import LocalContext

    device = _device(spec)
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(max(1, math.floor(spec.resources.cpus_per_worker)))
    try:
        started = time.perf_counter()
        geometry = build.dataset_geometry(spec)
        procedure, _ = build.build_procedure(spec, geometry, device, 1, lambda m: m.to(device))
        evaluator = build.evaluator(spec, geometry, device, is_main=False)
        setup_s = time.perf_counter() - started
        per_worker = build.per_worker_batch(spec)
        # One image per worker trains in the sweep (SyncBatchNorm's statistics span the workers)
        # but not in one process: time two and count half.
        timed = 2 if per_worker == 1 and spec.resources.num_workers > 1 else per_worker
        batch = synthetic_batch(geometry, timed, device)
        _, times = time_iterations(procedure, batch, iters, warmup, device)
        s_per_iter = statistics.median(times) * per_worker / timed
        if evaluator is None:
            return setup_s, s_per_iter, None
        # This worker's share of the val rows; the gathered metrics are computed on all of them
        # in the trial, on this share here (Inception features dominate on small sets).
        share = max(1, math.ceil(val_rows(spec) / spec.resources.num_workers))
        params = SyntheticParams(classes=geometry.num_classes, num=0, val=share)
        source = SyntheticSource(
            params, (geometry.height, geometry.width), 1, 0, 1, spec.train.seed, flip=False
        )
        with tempfile.TemporaryDirectory(prefix="sislab-estimate-") as tmp:
            start = time.perf_counter()
            evaluator.evaluate(procedure, source, LocalContext(Path(tmp), device))
            return setup_s, s_per_iter, time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)


def configuration_label(spec: Spec) -> str:
    """One line naming what a configuration's speed depends on (method, size, batch, precision)."""
    height, width = spec.dataset.image_size
    return (
        f"{spec.method} {height}x{width}, {build.per_worker_batch(spec)}/worker x "
        f"{spec.resources.num_workers}, {spec.train.precision}"
    )


def estimate_sweep(
    spec: Spec, *, iters: int = 3, warmup: int = 1, available: dict[str, float] | None = None
) -> SweepEstimate:
    """Time each distinct configuration of the sweep and add up its trials.

    Args:
        spec: Validated spec.
        iters: Timed iterations per configuration (the median counts).
        warmup: Iterations before them (allocator, cuDNN autotuning).
        available: CPUs/GPUs for the concurrency (default: this machine's).

    Returns:
        The estimate.
    """
    specs, caveats = trial_specs(spec)
    groups: dict[str, list[Spec]] = {}
    for trial in specs:
        groups.setdefault(timing_key(trial), []).append(trial)
    configs = []
    for trials in groups.values():
        first = trials[0]
        setup_s, s_per_iter, eval_s = time_configuration(first, iters, warmup)
        walls, iter_counts, eval_counts = [], [], []
        for trial in trials:
            num_iters = trial.train.epochs * iters_per_epoch(trial)
            num_evals = num_evaluations(trial)
            walls.append(setup_s + num_iters * s_per_iter + num_evals * (eval_s or 0.0))
            iter_counts.append(num_iters)
            eval_counts.append(num_evals)
        held = cost_config(
            first.resources.use_gpu, first.resources.num_workers, first.resources.cpus_per_worker,
            first.resources.gpus_per_worker, first.resources.trial_driver_cpus,
        )  # fmt: skip
        configs.append(
            ConfigEstimate(
                label=configuration_label(first),
                trial_wall_s=walls,
                kind=held.kind,
                devices=held.devices,
                setup_s=setup_s,
                s_per_iter=s_per_iter,
                iters_per_trial=iter_counts,
                evals_per_trial=eval_counts,
                eval_s=eval_s,
            )
        )
    if spec.resources.use_gpu and not torch.cuda.is_available():
        caveats.append("no GPU here: GPU trials timed on the CPU (far too slow)")
    if spec.resources.num_workers > 1:
        caveats.append("DDP gradient all-reduce between workers not timed")
    if any("fid_train" in t.eval.metrics for t in specs):
        caveats.append("fid_train's train-split statistics (once per trial) not timed")
    caveats.append("checkpoints, sample grids and MLflow records not timed (the actual cost's "
                   "'other' besides set-up)")  # fmt: skip
    caveats.append("Ray's start of each trial's workers not counted (nor in the actual cost)")
    resources = available if available is not None else local_resources(None)
    return SweepEstimate(
        spec.name, len(specs), concurrency(spec, resources), configs, spec.cost, caveats
    )


def render(estimate: SweepEstimate) -> list[str]:
    """The lines ``sislab estimate`` (and ``sislab run``) print."""
    lines = [
        f"estimate of {estimate.name}: {estimate.num_trials} trial(s), "
        f"{len(estimate.configs)} distinct configuration(s), {estimate.concurrency} at a time"
    ]
    for c in estimate.configs:
        evals = "no evaluation" if c.eval_s is None else (
            f"evaluation {c.eval_s:.1f} s x {max(c.evals_per_trial)}"
        )  # fmt: skip
        lines.append(
            f"  {c.label}: {len(c.trial_wall_s)} trial(s), set-up {c.setup_s:.1f} s, "
            f"{c.s_per_iter:.3f} s/iter x {max(c.iters_per_trial)} iters, {evals}; "
            f"{c.devices:g} {c.kind.upper()}s held, {c.device_hours:.4f} {c.kind.upper()}-hours"
        )
    parts = [
        f"{estimate.hours(k):.4f} {k.upper()}-hours"
        for k in ("gpu", "cpu")
        if any(c.kind == k for c in estimate.configs)
    ]
    total = estimate.total
    money = "" if total is None else f", {total:.4g} {estimate.prices.currency}"
    lines.append(f"expected: {', '.join(parts)}{money}; wall time {estimate.wall_s:.0f} s")
    lines += [f"  not counted / approximate: {c}" for c in estimate.caveats]
    return lines
