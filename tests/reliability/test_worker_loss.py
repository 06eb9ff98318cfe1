"""Worker loss: a Train worker SIGKILLed mid-trial; the trial restarts from its last checkpoint,
and the MLflow step axis has every step exactly once.

(Moved here from tests/e2e/test_kill_resume.py and extended; the one SIGKILL test of the suite.)"""

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

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Enough epochs after the first checkpoint that the kill lands mid-training: an epoch of this
# tiny model takes a fraction of a second once reports no longer wait for Ray's 2 s poll.
EPOCHS, ITERS_PER_EPOCH = 8, 2
SPEC = f"""\
name: e2e-kill-resume
method: spade
dataset:
  uri: synthetic://shapes?size=32&classes=4&num=8&val=2
  image_size: [32, 32]
model: {{ngf: 4, ndf: 4}}
losses: {{perceptual: 0}}
train:
  epochs: {EPOCHS}
  lr_decay_epochs: 0
  batch_size: 2
  max_iters_per_epoch: {ITERS_PER_EPOCH}
  log_every_iters: 1
  checkpoint_every_epochs: 1
  max_failures: 1
eval: {{num_grid_samples: 1, every_epochs: 100, metrics: []}}
resources: {{num_workers: 2, cpus_per_worker: 0.4}}
"""
DEADLINE_S = 300


def _train_worker_pids(raylet_pid: int) -> list[int]:
    # Only this session's cluster: other Ray clusters may run on the same machine.
    marker = f"RAY_RAYLET_PID={raylet_pid}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            if "RayTrainWorker" in cmdline and marker in (entry / "environ").read_bytes().split(
                b"\0"
            ):
                pids.append(int(entry.name))
        except OSError:
            continue
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
        time.sleep(0.05)
    raylet = ray_cluster._private.worker._global_node.all_processes["raylet"][0].process.pid
    victims = _train_worker_pids(raylet)
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
    assert len(resumed) == 1, "one restart, one resume marker"
    resume_at = int(resumed[0].value)
    total = EPOCHS * ITERS_PER_EPOCH
    for key in ("train/loss_g", "train/loss_d"):
        steps = [m.step for m in client.get_metric_history(run_id, key)]
        # Every iteration of the trial logged exactly once: the steps redone after the resume
        # point that the killed worker had already sent are not logged again.
        assert sorted(steps) == list(range(1, total + 1)), (key, steps)
    print(f"killed; resumed from iteration {resume_at}; 0 steps logged twice, 0 missing")
