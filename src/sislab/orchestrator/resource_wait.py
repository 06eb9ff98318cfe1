"""Saying what a sweep waits for: a Tune callback printing the CPUs and GPUs that pending trials
lack, and for how long, while no trial can be placed (e.g. an autoscaling cluster adding nodes).

Runs on the Tune driver.
"""

from __future__ import annotations

import time

import ray
from ray.tune import Callback
from ray.tune.experiment import Trial
from rich.console import Console

from sislab.orchestrator.preflight_resources import trial_demand
from sislab.spec.spec import Spec

# How often the line is printed while the wait lasts (and Ray is asked what is free).
EVERY_S = 20.0


def pending_line(demand: dict[str, float], free: dict[str, float], waited_s: float) -> str | None:
    """``waiting for resources: N CPU, M GPU pending for T s``, or None when a trial fits."""
    missing = {k: demand[k] - free.get(k, 0.0) for k in demand if demand[k] > free.get(k, 0.0)}
    if not missing:
        return None
    parts = ", ".join(f"{v:g} {k}" for k, v in missing.items())
    return f"waiting for resources: {parts} pending for {waited_s:.0f} s"


class ResourceWait(Callback):
    """Print :func:`pending_line` every ``EVERY_S`` while trials are pending and none runs.

    Args:
        spec: The sweep's spec (what one trial asks for).
        console: Where to print (the live view's console).
    """

    def __init__(self, spec: Spec, console: Console | None = None) -> None:
        self._demand = trial_demand(spec)
        self._console = console
        self._since: float | None = None
        self._last = 0.0

    def __getstate__(self) -> dict:
        # Tune pickles its callbacks into the experiment state; consoles hold locks.
        return {**self.__dict__, "_console": None}

    def on_step_end(self, iteration: int, trials: list[Trial], **info) -> None:
        waiting = any(t.status == Trial.PENDING for t in trials) and not any(
            t.status == Trial.RUNNING for t in trials
        )
        now = time.monotonic()
        if not waiting:
            self._since = None
            return
        if self._since is None:
            self._since = self._last = now
            return
        if now - self._last < EVERY_S:
            return
        self._last = now
        free = ray.available_resources()
        line = pending_line(self._demand, free, now - self._since)
        if line is not None:
            (self._console or Console()).print(line, highlight=False)
