"""Device time of one trial: resources held × wall time, split into training, evaluation, waiting
for data and the rest, and the time-to-target of ``eval.target``.

A trial holds ``devices`` GPUs (``use_gpu``: workers × ``gpus_per_worker``) or else CPUs
(workers × ``cpus_per_worker`` + the trial driver's ``trial_driver_cpus``) from the moment its
worker function starts to its end; every second of that is a device-second, whether the devices
compute or not. The loop tells the meter which phase it is in; what no phase claims (building the
networks, checkpoints, sample grids, reports) is ``other``. The meter's state goes into every
checkpoint, so a restarted trial continues its count (the time since the last checkpoint of a
failed attempt is not counted).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from sislab.spec.models import EVAL_METRIC_MODES

T = TypeVar("T")
PHASES = ("train", "eval", "data_wait")
SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class CostConfig:
    """What the trial holds and what it aims at.

    Args:
        kind: ``gpu`` when the trial holds GPUs, else ``cpu``.
        devices: GPUs (or CPUs) the trial holds, all workers and its driver together.
        targets: ``eval.target``: metric -> value to reach.
    """

    kind: Literal["gpu", "cpu"]
    devices: float
    targets: dict[str, float] = field(default_factory=dict)


def cost_config(
    use_gpu: bool,
    num_workers: int,
    cpus_per_worker: float,
    gpus_per_worker: float,
    trial_driver_cpus: float,
    targets: dict[str, float] | None = None,
) -> CostConfig:
    """The devices a trial holds, from the spec's ``resources`` (see the module docstring)."""
    if use_gpu:
        return CostConfig("gpu", num_workers * gpus_per_worker, dict(targets or {}))
    return CostConfig("cpu", num_workers * cpus_per_worker + trial_driver_cpus, dict(targets or {}))


def reached(metric: str, value: float, target: float) -> bool:
    """Whether ``value`` of ``metric`` is at or beyond ``target`` in the metric's direction."""
    if EVAL_METRIC_MODES[metric] == "min":
        return value <= target
    return value >= target


class CostMeter:
    """Wall seconds per phase since the trial's worker function started (all ranks keep one;
    rank 0's is logged).

    Args:
        config: Devices held and targets.
        started_s: ``time.perf_counter()`` when the worker function started (default: now).
        enabled: False: it times as usual but has no metrics, params or targets to log (a loop
            run outside a sweep, e.g. unit tests and benchmarks).
    """

    def __init__(
        self, config: CostConfig, started_s: float | None = None, enabled: bool = True
    ) -> None:
        self.config = config
        self.enabled = enabled
        self._started = time.perf_counter() if started_s is None else started_s
        self._carried_s = 0.0  # wall seconds of earlier attempts, from the checkpoint
        self.phase_s = dict.fromkeys(PHASES, 0.0)
        self.targets_reached: dict[str, dict[str, float]] = {}
        self._open: tuple[str, float, float] = ("train", self._started, 0.0)

    @classmethod
    def disabled(cls) -> CostMeter:
        """A meter that logs nothing."""
        return cls(CostConfig("cpu", 0.0), enabled=False)

    def load(self, state: dict | None) -> None:
        """Continue from a checkpoint's ``cost`` record (None: nothing to continue)."""
        if not state:
            return
        self._carried_s = float(state.get("wall_s", 0.0))
        self.phase_s = {p: float(state.get(f"{p}_s", 0.0)) for p in PHASES}
        self.targets_reached = {k: dict(v) for k, v in state.get("targets", {}).items()}

    def state(self) -> dict:
        """The record stored in checkpoints (``CheckpointMeta.cost``)."""
        record = {f"{p}_s": v for p, v in self.phase_s.items()}
        record.update(wall_s=self.wall_s(), targets=self.targets_reached)
        return record

    def wall_s(self) -> float:
        """Wall seconds held so far, earlier attempts included."""
        return self._carried_s + time.perf_counter() - self._started

    def add(self, phase: str, seconds: float) -> None:
        """Count ``seconds`` of wall time to ``phase`` (train, eval or data_wait)."""
        self.phase_s[phase] += seconds

    def begin(self, name: str) -> None:
        """Start counting wall time to ``name`` until ``end`` (one phase open at a time)."""
        self._open = (name, time.perf_counter(), self.phase_s["data_wait"])

    def end(self) -> None:
        """Count the time since ``begin`` to its phase, less the data waits counted meanwhile."""
        name, start, waited = self._open
        self.add(name, time.perf_counter() - start - (self.phase_s["data_wait"] - waited))

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Count the wall time of the block to ``name`` (``begin`` and ``end`` around it)."""
        self.begin(name)
        try:
            yield
        finally:
            self.end()

    def timed_batches(self, batches: Iterable[T]) -> Iterator[T]:
        """``batches``, counting the time blocked on each ``next`` as waiting for data."""
        iterator = iter(batches)
        while True:
            start = time.perf_counter()
            try:
                batch = next(iterator)
            except StopIteration:
                self.add("data_wait", time.perf_counter() - start)
                return
            self.add("data_wait", time.perf_counter() - start)
            yield batch

    def check_targets(self, scores: dict[str, float], iteration: int) -> dict[str, float]:
        """Record the targets ``scores`` (``eval/<name>`` keys) reach for the first time.

        Returns:
            The metrics to log for them: ``target/<metric>_step`` and
            ``target/<metric>_device_hours``.
        """
        new: dict[str, float] = {}
        if not self.enabled:
            return new
        for metric, target in self.config.targets.items():
            value = scores.get(f"eval/{metric}")
            if (
                metric in self.targets_reached
                or value is None
                or not reached(metric, value, target)
            ):
                continue
            record = {"step": float(iteration), "device_hours": self.device_hours()}
            self.targets_reached[metric] = record
            new.update({f"target/{metric}_{k}": v for k, v in record.items()})
        return new

    def device_hours(self) -> float:
        """Devices held × wall hours so far."""
        return self.config.devices * self.wall_s() / SECONDS_PER_HOUR

    def metrics(self, images_seen: int) -> dict[str, float]:
        """The ``cost/*`` metrics of the trial so far (cumulative; the last value is the total).

        ``cost/device_s_<phase>`` split ``cost/device_s`` (``other``: what no phase claims);
        ``cost/<kind>_hours`` is the total in hours, the figure the parent run sums;
        ``cost/images_per_s`` is ``images_seen`` over the whole wall time (evaluations, waits and
        set-up included, unlike ``train/images_per_s``). Empty when the meter is disabled.
        """
        if not self.enabled:
            return {}
        wall = self.wall_s()
        devices = self.config.devices
        out = {f"cost/device_s_{p}": devices * s for p, s in self.phase_s.items()}
        out["cost/device_s_other"] = devices * max(0.0, wall - sum(self.phase_s.values()))
        out["cost/device_s"] = devices * wall
        out[f"cost/{self.config.kind}_hours"] = devices * wall / SECONDS_PER_HOUR
        out["cost/wall_s"] = wall
        if wall > 0:
            out["cost/images_per_s"] = images_seen / wall
        return out

    def params(self) -> dict[str, str]:
        """Run params saying what was counted: the device kind and how many were held."""
        if not self.enabled:
            return {}
        return {"cost.device": self.config.kind, "cost.devices_held": f"{self.config.devices:g}"}
