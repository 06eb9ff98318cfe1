"""Background threads of a training process run at a lower priority than the step's thread."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sislab.orchestrator.mlflow_store import prepare_sqlite_store
from sislab.trainers.mlflow_tracker import MlflowTracker
from sislab.trainers.thread_priority import BACKGROUND_NICENESS, lower_this_thread

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's"
)


def _nice(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


def test_only_the_calling_thread_and_those_it_starts_are_lowered() -> None:
    own = _nice(threading.get_native_id())
    seen: dict[str, object] = {}

    def background() -> None:
        seen["took"] = lower_this_thread()
        seen["nice"] = _nice(threading.get_native_id())
        child = threading.Thread(
            target=lambda: seen.__setitem__("child", _nice(threading.get_native_id()))
        )
        child.start()
        child.join()

    thread = threading.Thread(target=background)
    thread.start()
    thread.join()
    assert seen["took"] is True
    assert seen["nice"] == min(19, own + BACKGROUND_NICENESS)
    assert seen["child"] == seen["nice"]
    assert _nice(threading.get_native_id()) == own  # the caller's thread (the step's) keeps its own


def test_the_mlflow_sender_runs_lowered(tmp_path: Path) -> None:
    prepare_sqlite_store(tmp_path / "mlflow.db")
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = client.create_run(client.create_experiment("t")).info.run_id
    own = _nice(threading.get_native_id())
    tracker = MlflowTracker(client, run_id, flush_every_s=60)
    try:
        tracker.log_metrics({"loss": 1.0}, step=0)
        assert tracker.flush()  # the sender has taken a batch: it is past its start
        assert _nice(tracker._thread.native_id) == min(19, own + BACKGROUND_NICENESS)
    finally:
        tracker.close()
    assert [m.value for m in client.get_metric_history(run_id, "loss")] == [1.0]
