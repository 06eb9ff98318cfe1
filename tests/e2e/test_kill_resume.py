"""A Train worker SIGKILLed mid-trial: the trial restarts from its last checkpoint, not from 0."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from rich.console import Console

from sislab.orchestrator.run_dir import RunDir
from sislab.orchestrator.sweep import run_sweep
from sislab.spec.loader import load_spec

pytestmark = pytest.mark.e2e

EPOCHS, ITERS_PER_EPOCH = 4, 2
SPEC = f"""\
name: e2e-kill-resume
method: spade
dataset:
  uri: synthetic://shapes?size=32&classes=4&num=8&val=2
  image_size: [32, 32]
model: {{ngf: 8, ndf: 8}}
train:
  epochs: {EPOCHS}
  lr_decay_epochs: 0
  batch_size: 2
  max_iters_per_epoch: {ITERS_PER_EPOCH}
  log_every_iters: 1
  checkpoint_every_epochs: 1
  max_failures: 1
eval: {{num_grid_samples: 1, every_epochs: 100}}
resources: {{num_workers: 2, cpus_per_worker: 0.4}}
"""
DEADLINE_S = 300


def _train_worker_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "RayTrainWorker" in cmdline:
            pids.append(int(entry.name))
    return pids


def _checkpoint_committed(root: Path) -> bool:
    # Ray Train's controller writes this snapshot after it has registered a reported checkpoint.
    return any(
        "checkpoint_" in path.read_text()
        for path in root.glob("ray_results/train-*/checkpoint_manager_snapshot.json")
    )


def test_killed_worker_resumes_from_checkpoint(ray_cluster, tmp_path: Path) -> None:
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(SPEC)
    spec = load_spec(spec_path)
    run_dir = RunDir.create(tmp_path, spec.name, tmp_path / "run")
    outcome: dict = {}

    def sweep() -> None:
        outcome["result"] = run_sweep(spec, spec_path, run_dir=run_dir, console=Console(quiet=True))

    thread = threading.Thread(target=sweep)
    thread.start()
    # Wait (bounded) until Ray Train has registered the first checkpoint (a folder in storage
    # alone is not yet a checkpoint the restarted workers would get), then kill a worker.
    deadline = time.monotonic() + DEADLINE_S
    while not _checkpoint_committed(run_dir.root):
        assert thread.is_alive(), "sweep ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.2)
    victims = _train_worker_pids()
    assert victims, "no Ray Train worker process found"
    os.kill(victims[0], signal.SIGKILL)
    thread.join(DEADLINE_S)
    assert not thread.is_alive()

    result = outcome["result"]
    assert result.num_errors == 0
    state = run_dir.load_state()
    client = MlflowClient(state.tracking_uri)
    children = client.search_runs(
        [state.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{state.parent_run_id}'"
    )
    assert len(children) == 1, "the restarted trial must append to its own run"
    run_id = children[0].info.run_id
    resumed = client.get_metric_history(run_id, "train/resumed_from_iteration")
    assert resumed, "the trial did not resume from a checkpoint"
    assert resumed[0].value >= ITERS_PER_EPOCH  # continued from a saved iteration, not from 0
    assert resumed[0].value % ITERS_PER_EPOCH == 0
    steps = [m.step for m in client.get_metric_history(run_id, "train/loss_g")]
    assert max(steps) == EPOCHS * ITERS_PER_EPOCH
    # Steps after the resume point were logged at most twice (lost work <= one checkpoint interval).
    assert all(steps.count(s) <= 2 for s in set(steps))
    assert sorted(set(steps)) == list(range(1, EPOCHS * ITERS_PER_EPOCH + 1))
