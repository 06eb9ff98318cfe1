"""``sislab bench orchestration``: sislab's own overhead against plain Ray Tune + Train.

Both sides run the same trivial sweep on the same Ray instance in one process: 2 trials, each a
TorchTrainer of 2 workers that report a few times with a small checkpoint. The sislab side goes
through everything ``sislab run`` does (spec validation, run folder, MLflow parent and nested runs
with per-report metrics, the live view, the trial driver); only the model is left out. The order
alternates (plain, sislab, sislab, plain, ...) so warm caches favour neither side.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray.train
import ray.tune
from ray.train.torch import TorchTrainer
from ray.tune.integration.ray_train import TuneReportCallback
from rich.console import Console

NUM_REPORTS = 3
WORKER_CPUS = 0.4  # two trials x two workers fit on 2 cores (ray-notes: fractional resources)
DRIVER_CPUS = 0.1

BENCH_SPEC = f"""\
name: bench-orchestration
method: spade
dataset: {{uri: "synthetic://shapes?size=64&classes=4&num=8&val=2"}}
train: {{epochs: {NUM_REPORTS}, batch_size: 2}}
resources: {{num_workers: 2, cpus_per_worker: {WORKER_CPUS}, trial_driver_cpus: {DRIVER_CPUS}}}
search:
  space:
    train.seed: {{grid: [0, 1]}}
"""


def _report_loop(report_metrics) -> None:
    context = ray.train.get_context()
    for step in range(1, NUM_REPORTS + 1):
        metrics = {"epoch": float(step), "train/loss_g": 1.0 / step}
        checkpoint = None
        if context.get_world_rank() == 0:
            with tempfile.TemporaryDirectory() as tmp:
                Path(tmp, "state.txt").write_text(str(step))
                checkpoint = ray.train.Checkpoint.from_directory(tmp)
                report_metrics(metrics, step)
                ray.train.report(metrics, checkpoint=checkpoint)
        else:
            ray.train.report(metrics, checkpoint=None)


def plain_worker(config: dict[str, Any]) -> None:
    """Plain Ray Train worker: reports with checkpoints, nothing else."""
    _report_loop(lambda metrics, step: None)


def sislab_worker(config: dict[str, Any]) -> None:
    """sislab's worker path without a model: payload, context and MLflow tracker of rank 0."""
    from sislab.trainers.worker import RayContext, TrialPayload, _tracker

    payload = TrialPayload.model_validate(config)
    ctx = RayContext()
    tracker, _ = _tracker(payload, ctx.is_main)
    _report_loop(lambda metrics, step: tracker.log_metrics(metrics, step))
    tracker.flush()


def _plain_driver(config: dict[str, Any], storage: str) -> None:
    trial_id = ray.tune.get_context().get_trial_id()
    TorchTrainer(
        plain_worker,
        train_loop_config=config,
        scaling_config=ray.train.ScalingConfig(
            num_workers=2, resources_per_worker={"CPU": WORKER_CPUS}
        ),
        run_config=ray.train.RunConfig(
            name=f"train-{trial_id}", storage_path=storage, callbacks=[TuneReportCallback()]
        ),
    ).fit()


def run_plain(root: Path) -> float:
    """Seconds for the trivial sweep through plain Ray Tune + Train."""
    start = time.perf_counter()
    storage = str(root / "plain")
    tuner = ray.tune.Tuner(
        ray.tune.with_resources(
            ray.tune.with_parameters(_plain_driver, storage=storage), {"CPU": DRIVER_CPUS}
        ),
        param_space={"seed": ray.tune.grid_search([0, 1])},
        tune_config=ray.tune.TuneConfig(max_concurrent_trials=2),
        run_config=ray.tune.RunConfig(name="plain", storage_path=storage, verbose=0),
    )
    results = tuner.fit()
    if results.errors:
        raise RuntimeError(f"plain sweep failed: {results.errors}")
    return time.perf_counter() - start


def run_sislab(root: Path, index: int) -> float:
    """Seconds for the same sweep through sislab (validation to the final MLflow state)."""
    from sislab.orchestrator.run_dir import RunDir
    from sislab.orchestrator.sweep import run_sweep
    from sislab.spec.loader import load_spec

    start = time.perf_counter()
    spec_path = root / f"bench-{index}.yaml"
    spec_path.write_text(BENCH_SPEC)
    spec = load_spec(spec_path)
    run_dir = RunDir.create(root, spec.name, root / f"sislab-{index}")
    outcome = run_sweep(
        spec, spec_path, run_dir=run_dir, console=Console(quiet=True), worker_fn=sislab_worker
    )
    if outcome.num_errors:
        raise RuntimeError(f"sislab sweep failed, see {run_dir.root}")
    return time.perf_counter() - start


@dataclass(frozen=True)
class OrchestrationBench:
    """Seconds per sweep on each side and their ratio (sislab / plain)."""

    plain_s: list[float]
    sislab_s: list[float]

    @property
    def ratio(self) -> float:
        return statistics.median(self.sislab_s) / statistics.median(self.plain_s)


def bench_orchestration(repeats: int = 1, num_cpus: int | None = None) -> OrchestrationBench:
    """Run both sides ``repeats`` times each, alternating, on one local Ray."""
    from sislab.cluster.connect import connect

    plain, sislab = [], []
    with tempfile.TemporaryDirectory(prefix="sislab-bench-") as tmp:
        root = Path(tmp)
        connect(None, root / "ray.log", num_cpus)
        for i in range(repeats):
            order = ("plain", "sislab") if i % 2 == 0 else ("sislab", "plain")
            for side in order:
                if side == "plain":
                    plain.append(run_plain(root))
                else:
                    sislab.append(run_sislab(root, i))
    return OrchestrationBench(plain, sislab)
