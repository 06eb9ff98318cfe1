"""Train reports to Tune, with a Tune checkpoint per Train checkpoint (what PBT clones).

Ray's ``TuneReportCallback`` (Train V2) hands Tune only rank 0's metrics plus a
``checkpoint_path`` metric: Tune holds no checkpoint of the trial, so PBT's exploit has nothing
to copy and a paused trial nothing to restore. Here the Train controller's callback sends each
report to the trial driver, which reports it to Tune with a small Tune checkpoint: a pointer
(``trainers.checkpoint.CheckpointPointer``) to the Train checkpoint in the sweep's storage. No
weights are copied; a trial that starts from another trial's pointer starts a new Train run from
that checkpoint (``orchestrator.trial``).
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray.tune
from ray.train import Checkpoint
from ray.train.v2.api.callback import UserCallback
from ray.util.queue import Queue

from sislab.trainers.checkpoint import CheckpointPointer

POINTER_FILE = "sislab_train_checkpoint.json"
CHECKPOINT_PATH_KEY = "checkpoint_path"  # the metric TuneReportCallback adds, kept for readers
_FINISHED = "__sislab_train_finished__"


def read_pointer(checkpoint: Checkpoint | None) -> CheckpointPointer | None:
    """The pointer in a trial's Tune checkpoint (None: no checkpoint, or not sislab's)."""
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        path = Path(folder) / POINTER_FILE
        if not path.exists():
            return None
        return CheckpointPointer.model_validate_json(path.read_text())


class ReportToTrialDriver(UserCallback):
    """Train controller callback: rank 0's metrics and the checkpoint path of every report.

    The queue holds one report: the controller waits until the trial driver has handed the
    previous one to Tune, as with Ray's own callback, so schedulers act on current results.
    """

    def __init__(self, queue: Queue) -> None:
        self._queue = queue

    def after_report(self, run_context, metrics: list[dict[str, Any]], checkpoint) -> None:
        item = dict(metrics[0])
        if checkpoint is not None:
            item[CHECKPOINT_PATH_KEY] = checkpoint.path
        self._queue.put(item)


def fit_reporting_to_tune(
    fit: Callable[[], Any],
    queue: Queue,
    trial_id: str,
    run_name: str,
    decisions: Queue | None = None,
) -> None:
    """Run ``fit`` (a TorchTrainer's) and report each of its results to Tune as it arrives.

    Runs in the Tune trial's function thread, the one whose ``ray.tune.report`` Tune waits on;
    ``fit`` runs in a daemon thread, so a trial Tune stops (its function thread leaves
    ``report``) ends with its process. With ``decisions`` (PBT), the epoch of each report Tune
    took and let the trial continue after is put there, for the workers that wait on it
    (``trainers.tune_decisions``).

    Raises:
        Whatever ``fit`` raised (Train's error after its retries), so that Tune marks the trial.
    """
    failure: list[BaseException] = []

    def run() -> None:
        try:
            fit()
        except BaseException as exc:  # handed to the trial's thread, which raises it
            failure.append(exc)
        finally:
            queue.put(_FINISHED)

    threading.Thread(target=run, name="sislab-train-fit", daemon=True).start()
    while (item := queue.get()) != _FINISHED:
        _report(item, trial_id, run_name)
        if decisions is not None:
            decisions.put(int(item.get("epoch", 0)))
    if failure:
        raise failure[0]


def _report(item: dict[str, Any], trial_id: str, run_name: str) -> None:
    """One Train report to Tune, with a pointer checkpoint when it has a Train checkpoint."""
    path = item.get(CHECKPOINT_PATH_KEY)
    if path is None:
        ray.tune.report(item)
        return
    pointer = CheckpointPointer(
        trial_id=trial_id,
        run_name=run_name,
        path=path,
        epoch=int(item.get("epoch", 0)),
        iteration=int(item.get("iteration", 0)),
    )
    with tempfile.TemporaryDirectory(prefix="sislab-pointer-") as folder:
        (Path(folder) / POINTER_FILE).write_text(pointer.model_dump_json())
        # Tune copies the folder into the trial's storage before report returns.
        ray.tune.report(item, checkpoint=ray.tune.Checkpoint.from_directory(folder))
