"""``sislab bench orchestration``: sislab's per-trial overhead against plain Ray Tune.

Both sides run the same sweep of ``N`` trials of a trivial trainable (it reports ``NUM_REPORTS``
epochs of a few metrics and returns: no model, no Ray Train) with the same resources and
concurrency, on one local Ray, in this process. The sislab side goes through ``sislab run``'s
path: spec loading and validation, run folder, the searcher, the MLflow parent run, each trial's
spec resolved and its nested run opened and logged to as rank 0 does, the live view (terminal
mode, drawn to /dev/null), the trial-status callback, and the parent's outcome at the end. Only
the Train run of a trial is swapped (``run_sweep(trial_fn=...)``). The driver's RSS is sampled
during each run. A short plain sweep first starts Ray's worker processes; then the order
alternates over repeats so that warm caches favour neither side.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import ray.tune
from rich.console import Console

NUM_REPORTS = 3  # epochs each trial reports
TRIAL_CPUS = 0.25  # what a trial asks of Ray (both sides)
MAX_CONCURRENT = 4  # trials at once (both sides)
RSS_EVERY_S = 0.2  # how often the driver's RSS is sampled

BENCH_SPEC = """\
name: bench-orchestration
method: spade
dataset: {{uri: "synthetic://shapes?size=64&classes=4&num=8&val=2"}}
train: {{epochs: {epochs}, batch_size: 2}}
resources: {{num_workers: 1, cpus_per_worker: {cpus}, trial_driver_cpus: {cpus}}}
search:
  algorithm: random
  num_samples: {trials}
  max_concurrent_trials: {concurrent}
  metric: train/loss_g
  mode: min
  space:
    train.lr_g: {{loguniform: [1.0e-5, 1.0e-3]}}
"""


def _report_epochs(log) -> None:
    """The trivial trainable's body: a few metrics per epoch, each reported to Tune."""
    for epoch in range(1, NUM_REPORTS + 1):
        metrics = {"epoch": epoch, "train/loss_g": 1.0 / epoch, "train/loss_d": 0.5}
        log(metrics, epoch)
        ray.tune.report(metrics)


def plain_trial(config: dict[str, Any]) -> None:
    """Plain Ray Tune function trainable."""
    _report_epochs(lambda metrics, step: None)


def sislab_trial(overrides: dict[str, Any], context) -> None:
    """sislab's trial without Ray Train: the trial's spec resolved, its nested MLflow run opened
    (found by trial id, named, params and infrastructure artifact) and logged to by the same
    tracker rank 0 uses, then closed by the Tune driver's callback."""
    from sislab.orchestrator.trial import trial_spec_of
    from sislab.trainers.worker import TrialPayload, _tracker

    spec = trial_spec_of(context.spec_data, overrides)
    payload = TrialPayload(
        spec=spec.model_dump(mode="json"),
        trial_id=ray.tune.get_context().get_trial_id(),
        overrides=overrides,
        tracking_uri=context.tracking_uri,
        experiment_id=context.experiment_id,
        parent_run_id=context.parent_run_id,
    )
    tracker, _ = _tracker(payload, True, {})
    _report_epochs(tracker.log_metrics)
    tracker.close()


class RssSampler:
    """Samples this process's resident memory from a thread while in a ``with`` block."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, int]] = []  # (seconds since start, bytes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sislab-rss", daemon=True)

    def _run(self) -> None:
        process, start = psutil.Process(), time.monotonic()
        while True:
            self.samples.append((time.monotonic() - start, process.memory_info().rss))
            if self._stop.wait(RSS_EVERY_S):
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@dataclass(frozen=True)
class SideRun:
    """One sweep of one side: seconds, and the driver's RSS samples."""

    seconds: float
    rss: list[tuple[float, int]] = field(repr=False)

    @property
    def peak_mb(self) -> float:
        return max(b for _, b in self.rss) / 2**20

    def mb_at(self, fraction: float) -> float:
        """RSS at ``fraction`` of the run's duration (the last sample before it)."""
        limit = fraction * self.rss[-1][0]
        return max((b for t, b in self.rss if t <= limit), default=self.rss[0][1]) / 2**20


def run_plain(root: Path, trials: int) -> SideRun:
    """The sweep through plain Ray Tune."""
    with RssSampler() as rss:
        start = time.perf_counter()
        tuner = ray.tune.Tuner(
            ray.tune.with_resources(plain_trial, {"CPU": TRIAL_CPUS}),
            param_space={"train.lr_g": ray.tune.loguniform(1e-5, 1e-3)},
            # sislab reuses trial actors when no scheduler stops trials (sweep.reuse_trial_actors):
            # the same here, so that the ratio is sislab's own additions, not Ray's default.
            tune_config=ray.tune.TuneConfig(
                num_samples=trials, max_concurrent_trials=MAX_CONCURRENT, reuse_actors=True
            ),
            run_config=ray.tune.RunConfig(
                name="plain", storage_path=str(root / "plain"), verbose=0
            ),
        )
        results = tuner.fit()
        seconds = time.perf_counter() - start
    if results.errors:
        raise RuntimeError(f"plain sweep failed: {results.errors[0]}")
    return SideRun(seconds, rss.samples)


def run_sislab(root: Path, trials: int, index: int) -> SideRun:
    """The same sweep through sislab, from the spec file to the parent run's outcome."""
    from sislab.orchestrator.run_dir import RunDir
    from sislab.orchestrator.sweep import run_sweep
    from sislab.spec.loader import load_spec

    spec_path = root / f"bench-{index}.yaml"
    spec_path.write_text(
        BENCH_SPEC.format(
            epochs=NUM_REPORTS, cpus=TRIAL_CPUS, trials=trials, concurrent=MAX_CONCURRENT
        )
    )
    # The live view's terminal path (table rebuilt per event, redrawn 4 times a second).
    with open(os.devnull, "w") as devnull, RssSampler() as rss:
        start = time.perf_counter()
        spec = load_spec(spec_path)
        run_dir = RunDir.create(root, spec.name, root / f"sislab-{index}")
        console = Console(file=devnull, force_terminal=True, width=160, height=50)
        outcome = run_sweep(
            spec, spec_path, run_dir=run_dir, console=console, trial_fn=sislab_trial
        )  # fmt: skip
        seconds = time.perf_counter() - start
    if outcome.num_errors:
        raise RuntimeError(f"sislab sweep failed, see {run_dir.root}")
    return SideRun(seconds, rss.samples)


@dataclass(frozen=True)
class OrchestrationBench:
    """Both sides' runs and the per-trial overhead ratio (sislab / plain, medians)."""

    trials: int
    plain: list[SideRun]
    sislab: list[SideRun]

    @property
    def ratio(self) -> float:
        sislab = statistics.median(r.seconds for r in self.sislab)
        return sislab / statistics.median(r.seconds for r in self.plain)


def bench_orchestration(
    trials: int = 200, repeats: int = 1, num_cpus: int | None = None
) -> OrchestrationBench:
    """Run both sides ``repeats`` times each, alternating, on one local Ray."""
    from sislab.cluster.connect import connect
    from sislab.orchestrator.sweep import ray_train_settings

    plain, sislab = [], []
    with tempfile.TemporaryDirectory(prefix="sislab-bench-") as tmp:
        root = Path(tmp)
        ray_train_settings()
        connect(None, root / "ray.log", num_cpus)
        run_plain(root / "warm-up", MAX_CONCURRENT)  # Ray's worker processes start once, here
        for i in range(repeats):
            order = ("plain", "sislab") if i % 2 == 0 else ("sislab", "plain")
            for side in order:
                if side == "plain":
                    plain.append(run_plain(root, trials))
                else:
                    sislab.append(run_sislab(root, trials, i))
    return OrchestrationBench(trials, plain, sislab)
