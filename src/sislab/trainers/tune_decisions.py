"""Under PBT, Train workers wait for Tune's decision on each report before they train on.

Without this, rank 0 starts its next epoch as soon as ``ray.train.report`` returns, while the
report is still on its way to Tune; when PBT then pauses the trial or clones another trial into
it, the epoch in flight is thrown away, after its metrics (and perhaps its checkpoint) were
written. The trial driver answers each report once Tune has taken it and let the trial go on
(``ray.tune.report`` returned); a trial Tune stops never answers, and its workers end with it.
Runs in every Train worker (the wait itself on rank 0 only: the other ranks block in their next
collective).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ray.util.queue import Queue

# Set in each worker process by ``AwaitDecisions`` before the worker function runs: a module
# value, because Ray Train calls the worker function with its config only.
_decisions: Queue | None = None


@dataclass(frozen=True, slots=True)
class AwaitDecisions:
    """A Train worker function whose reports wait for Tune's answer (``wait_for_decision``).

    Args:
        worker_fn: The function every Train worker runs, called with the train loop config.
        decisions: The trial driver's queue of answers: the epoch of each report Tune took.
    """

    worker_fn: Callable[[dict[str, Any]], None]
    decisions: Queue

    def __call__(self, config: dict[str, Any]) -> None:
        global _decisions
        _decisions = self.decisions
        self.worker_fn(config)


def wait_for_decision(epoch: int) -> None:
    """Block until Tune has let the trial go on after its report of ``epoch`` (no-op without
    PBT). Answers of earlier reports (left by a worker that died before reading them) are
    skipped."""
    if _decisions is None:
        return
    while _decisions.get() < epoch:
        pass
