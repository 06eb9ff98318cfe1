"""``sislab bench trial``: a trial's iterations against the bare training step of its configuration.

The bare step is what ``sislab bench train`` and ``sislab estimate`` time: the trial's procedure
on one batch already in memory, in this process. The trial is the same configuration run by
``sislab run``'s whole path (local Ray, Tune, a Ray Train worker, the dataset through Ray Data,
MLflow), whose loop logs each epoch's first iteration and the median of the others
(``trainers.iteration_clock``). The two are taken in the same run of the command, one after the
other, on the same machine: what the platform costs a trial is their ratio.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from sislab.errors import SpecError
from sislab.spec.spec import Spec

TIMING_KEYS = (
    "system/first_iter_s",
    "system/iter_s",
    "system/first_batch_wait_s",
    "system/batch_wait_s",
    "system/first_step_s",
    "system/step_s",
    "system/first_step_cpu_s",
    "system/step_cpu_s",
)
# Logged after the epoch's report (the epoch's end), at the same step as the timings above.
EPOCH_END_KEYS = (
    "system/epoch_s",
    "system/epoch_end_s",
    "system/eval_s",
    "system/grid_s",
    "system/checkpoint_s",
)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


@dataclass(frozen=True)
class EpochTiming:
    """One epoch of the trial, in seconds (the steady values None with one iteration; the step's
    None in runs logged before the loop timed it, the epoch's and its end's before it timed
    those). ``end_parts``: the timed parts of the epoch's end that ran (``eval``, ``grid``,
    ``checkpoint``)."""

    epoch: int
    first_iter_s: float
    iter_s: float | None
    first_batch_wait_s: float | None
    batch_wait_s: float | None
    first_step_s: float | None = None
    step_s: float | None = None
    first_step_cpu_s: float | None = None
    step_cpu_s: float | None = None
    iterations: int | None = None
    epoch_s: float | None = None
    epoch_end_s: float | None = None
    end_parts: dict[str, float] = field(default_factory=dict)


@dataclass
class TrialBench:
    """Result of ``bench_trial``.

    ``bare_iter_s`` is timed before the trial and ``bare_after_iter_s`` after it: a machine whose
    speed drifts over the minutes of a trial shows as the two disagreeing, and the trial is
    compared with their mean.
    """

    label: str
    bare_iter_s: float
    epochs: list[EpochTiming]
    run_dir: Path
    trial_status: str
    notes: list[str] = field(default_factory=list)
    bare_after_iter_s: float | None = None

    @property
    def bare_s(self) -> float:
        """The bare step's s/iter: the mean of the timings before and after the trial."""
        if self.bare_after_iter_s is None:
            return self.bare_iter_s
        return (self.bare_iter_s + self.bare_after_iter_s) / 2

    @property
    def steady_iter_s(self) -> float | None:
        """Median over epochs of each epoch's steady-state s/iter."""
        values = [e.iter_s for e in self.epochs if e.iter_s is not None]
        return _median(values)

    def _boundary_epochs(self) -> list[EpochTiming]:
        # Epoch 1's first iteration is the trial's first step (allocations, lazy set-up), which
        # the bare step's warm-up leaves out: an epoch boundary is where epochs 2.. start.
        later = [e for e in self.epochs if e.epoch > 1]
        return later or self.epochs

    @property
    def first_iter_s(self) -> float | None:
        """Median of the epochs' first iterations (epochs 2.., or epoch 1 when it is alone)."""
        values = [e.first_iter_s for e in self._boundary_epochs()]
        return _median(values)

    @property
    def first_over_steady(self) -> float | None:
        """Median over epochs (2.., as ``first_iter_s``) of an epoch's first iteration over the
        same epoch's steady s/iter: each ratio is taken within the seconds of one epoch."""
        return self._median_within_epochs("first_iter_s", "iter_s", self._boundary_epochs())

    @property
    def steady_step_s(self) -> float | None:
        """Median over epochs of each epoch's steady-state training step alone (s)."""
        values = [e.step_s for e in self.epochs if e.step_s is not None]
        return _median(values)

    def _median_within_epochs(
        self, numerator: str, denominator: str, epochs: list[EpochTiming]
    ) -> float | None:
        values = [
            getattr(e, numerator) / getattr(e, denominator)
            for e in epochs
            if getattr(e, numerator) is not None and getattr(e, denominator)
        ]
        return _median(values)

    def outside_step_s(self) -> dict[str, float]:
        """Seconds of an iteration spent outside the training step (the wait for the batch, its
        copy to the device, the finiteness check, logging): ``first`` for an epoch's first
        iteration (median over epochs 2..), ``steady`` for the others (median over epochs of the
        epoch's medians); empty for runs that did not time the step."""
        out: dict[str, float] = {}
        first = [
            e.first_iter_s - e.first_step_s
            for e in self._boundary_epochs()
            if e.first_step_s is not None
        ]
        steady = [e.iter_s - e.step_s for e in self.epochs if None not in (e.iter_s, e.step_s)]
        if first:
            out["first"] = statistics.median(first)
        if steady:
            out["steady"] = statistics.median(steady)
        return out

    @property
    def epoch_end_s(self) -> float | None:
        """Median over epochs of the epoch's end (evaluation, grid, checkpoint, report), s."""
        return _median([e.epoch_end_s for e in self.epochs if e.epoch_end_s is not None])

    def end_parts_s(self) -> dict[str, tuple[float, int]]:
        """Each part of the epochs' ends: its median over the epochs where it ran, and on how
        many of them it ran."""
        parts: dict[str, list[float]] = {}
        for e in self.epochs:
            for name, value in e.end_parts.items():
                parts.setdefault(name, []).append(value)
        return {name: (statistics.median(v), len(v)) for name, v in parts.items()}

    def _trained_epochs(self) -> list[EpochTiming]:
        """Epochs 2.. with their wall time and iteration count (epoch 1 holds the warm-up)."""
        return [e for e in self._boundary_epochs() if e.epoch_s and e.iterations]

    def ratios(self) -> dict[str, float]:
        """The trial against the bare step, and its parts against each other (each missing when
        a side is):

        - ``steady/bare``: the steady iteration against the bare step (minutes apart);
        - ``first/steady``: an epoch's first iteration against the same epoch's steady state;
        - ``steady/step``: the steady iteration against the step inside it (median over
          epochs of the epoch's two medians): what the loop adds around the step, measured in
          the same iterations, so the machine's drift leaves it alone;
        - ``step/bare``: the step inside the trial against the bare step: the same code in
          the trial's worker process, beside Ray's and the data's threads and processes;
        - ``first_step/step``: an epoch's first step against the same epoch's steady step
          (epochs 2..);
        - ``step_cpu/step``: the loop thread's CPU time during the step over its wall time;
          under 1 where that thread was kept off a CPU (with one intra-op thread);
        - ``end/epoch``: the epoch's end (evaluation, grid, checkpoint, report) over the whole
          epoch (epochs 2..): the share of a trial's time that is no iteration's;
        - ``epoch/step``: the epoch's wall time per iteration, its end included, against the
          same epoch's steady step (epochs 2..): the whole of what a trial pays per iteration
          (the loop, the first iteration, the epoch's end) at this configuration's epoch length
          and evaluation and checkpoint frequencies, within each epoch's seconds;
        - ``epoch/bare``: the same per-iteration wall time against the bare step (minutes
          apart, as ``steady/bare``).
        """
        out: dict[str, float] = {}
        if self.steady_iter_s is not None:
            out["steady/bare"] = self.steady_iter_s / self.bare_s
        if self.first_over_steady is not None:
            out["first/steady"] = self.first_over_steady
        trained = self._trained_epochs()
        within = {
            "steady/step": ("iter_s", "step_s", self.epochs),
            "first_step/step": ("first_step_s", "step_s", self._boundary_epochs()),
            "step_cpu/step": ("step_cpu_s", "step_s", self.epochs),
            "end/epoch": ("epoch_end_s", "epoch_s", trained),
        }
        for name, (numerator, denominator, epochs) in within.items():
            value = self._median_within_epochs(numerator, denominator, epochs)
            if value is not None:
                out[name] = value
        if self.steady_step_s is not None:
            out["step/bare"] = self.steady_step_s / self.bare_s
        per_step = _median([e.epoch_s / e.iterations / e.step_s for e in trained if e.step_s])
        if per_step is not None:
            out["epoch/step"] = per_step
        if trained:
            per_iteration = statistics.median(e.epoch_s / e.iterations for e in trained)
            out["epoch/bare"] = per_iteration / self.bare_s
        return out


def single_configuration(spec: Spec) -> Spec:
    """The one trial configuration of ``spec``.

    Raises:
        SpecError: The sweep holds configurations of different speeds (method, sizes, widths,
            batch, switches): the comparison is per configuration.
    """
    from sislab.orchestrator.estimate import timing_key, trial_specs

    specs, _ = trial_specs(spec)
    keys = {timing_key(s) for s in specs}
    if len(keys) > 1:
        raise SpecError(
            f"{spec.name}: the sweep holds {len(keys)} configurations of different speed; "
            "bench trial compares one trial with the bare step of its configuration",
            fix="narrow search.space to values that leave the model, image size, batch and "
            "train switches alone (learning rates, seeds), or write a spec of one configuration",
        )
    return specs[0]


def epoch_timings(tracking_uri: str, run_id: str) -> list[EpochTiming]:
    """The per-epoch ``system/*`` timings a trial's loop logged, in step order."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    series = {
        key: {m.step: m.value for m in client.get_metric_history(run_id, key)}
        for key in TIMING_KEYS + EPOCH_END_KEYS
    }
    steps = sorted(series["system/first_iter_s"])
    part_keys = [k for k in EPOCH_END_KEYS if k not in ("system/epoch_s", "system/epoch_end_s")]
    return [
        EpochTiming(
            epoch=i + 1,
            first_iter_s=series["system/first_iter_s"][step],
            iter_s=series["system/iter_s"].get(step),
            first_batch_wait_s=series["system/first_batch_wait_s"].get(step),
            batch_wait_s=series["system/batch_wait_s"].get(step),
            first_step_s=series["system/first_step_s"].get(step),
            step_s=series["system/step_s"].get(step),
            first_step_cpu_s=series["system/first_step_cpu_s"].get(step),
            step_cpu_s=series["system/step_cpu_s"].get(step),
            iterations=step - (steps[i - 1] if i else 0),
            epoch_s=series["system/epoch_s"].get(step),
            epoch_end_s=series["system/epoch_end_s"].get(step),
            end_parts={
                key.removeprefix("system/").removesuffix("_s"): series[key][step]
                for key in part_keys
                if step in series[key]
            },
        )
        for i, step in enumerate(steps)
    ]


def bench_trial(
    spec: Spec,
    spec_path: Path,
    runs_root: Path,
    *,
    iters: int = 5,
    warmup: int = 2,
    num_cpus: int | None = None,
) -> TrialBench:
    """Time the bare step of the spec's configuration, run it as a sweep of one trial, then time
    the bare step again.

    Args:
        spec: The checked spec (``check_before_run``), of one configuration.
        spec_path: Its file (copied into the run folder, as ``sislab run`` does).
        runs_root: Parent of the new run folder.
        iters: Timed bare iterations (their median counts), before and after the trial.
        warmup: Untimed bare iterations first, each time.
        num_cpus: CPUs of the local Ray (None: all).
    """
    from sislab.orchestrator.estimate import configuration_label, time_configuration
    from sislab.orchestrator.run_dir import RunDir
    from sislab.orchestrator.summary import trial_summaries
    from sislab.orchestrator.sweep import run_sweep

    trial = single_configuration(spec)
    # The bare step first, before Ray and the trial's processes exist on this machine, and again
    # once the trial has ended (the local Ray idle).
    _, bare_iter_s, _ = time_configuration(trial, iters, warmup)
    run_dir = RunDir.create(runs_root, f"bench-trial-{spec.name}")
    outcome = run_sweep(spec, spec_path, run_dir=run_dir, num_cpus=num_cpus)
    _, bare_after_iter_s, _ = time_configuration(trial, iters, warmup)
    state = outcome.state
    rows = trial_summaries(state.tracking_uri, state.experiment_id, state.parent_run_id)
    notes = []
    if len(rows) != 1:
        notes.append(f"{len(rows)} trials ran; the first is shown")
    row = rows[0]
    return TrialBench(
        label=configuration_label(trial),
        bare_iter_s=bare_iter_s,
        epochs=epoch_timings(state.tracking_uri, row.run_id),
        run_dir=run_dir.root,
        trial_status=row.status + (f": {row.error}" if row.error else ""),
        notes=notes,
        bare_after_iter_s=bare_after_iter_s,
    )
