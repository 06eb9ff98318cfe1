"""A sweep whose driver is SIGKILLed mid-way, resumed with ``sislab resume``.

``sislab run`` runs as a subprocess, a Ray driver on the session's cluster (``--address``): the
SIGKILL takes only the driver, and Ray ends its job's actors (trials, Train controllers and
workers) as it does when a driver dies. ``sislab resume`` then runs in this process on the same
cluster (no Ray start-up and no second interpreter start-up to wait for).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sislab.cli import resume, run
from sislab.orchestrator.run_dir import RunDir

pytestmark = pytest.mark.e2e

SPEC = """\
name: e2e-resume
method: spade
dataset:
  uri: synthetic://shapes?size=32&classes=4&num=8&val=2
  image_size: [32, 32]
model: {ngf: 8, ndf: 8}
train:
  epochs: 2
  lr_decay_epochs: 0
  batch_size: 2
  max_iters_per_epoch: 1
  log_every_iters: 1
eval: {num_grid_samples: 1, every_epochs: 100, metrics: []}
resources: {num_workers: 1, cpus_per_worker: 0.25}
search:
  algorithm: grid
  max_concurrent_trials: 1
  space:
    train.lr_g: {grid: [1.0e-4, 2.0e-4, 3.0e-4]}
"""
DEADLINE_S = 600
# The CLI with the commands this test needs (independent of the wiring of cli/main.py).
CLI = """\
import argparse, sys
from sislab.cli import resume, run
parser = argparse.ArgumentParser()
sub = parser.add_subparsers(dest="command", required=True)
run.register(sub)
resume.register(sub)
args = parser.parse_args(sys.argv[1:])
sys.exit(args.handler(args))
"""


def _start(args: list[str], address: str, log: Path) -> subprocess.Popen:
    env = dict(os.environ)
    # Tune saves its experiment state at most every 10 s by default; every second here, so the
    # kill comes soon after the first trial is saved as finished (less of the next one is lost).
    env["TUNE_GLOBAL_CHECKPOINT_S"] = "1"
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", CLI, *args, "--address", address],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group, which the kill takes whole
        )


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(60)


def _tune_terminated(run_root: Path) -> set[str]:
    # Trials Tune's saved experiment state holds as finished: what a restore will not run again.
    # (Tune saves that state every few seconds; a trial finished in MLflow just before the kill
    # may still be RUNNING there, and is then started again, restoring its last checkpoint.)
    done: set[str] = set()
    for path in (run_root / "ray_results" / "sweep").glob("experiment_state-*.json"):
        try:
            trials = json.loads(path.read_text())["trial_data"]
        except (OSError, ValueError, KeyError):
            continue  # being written
        for trial_state, _ in trials:
            trial = json.loads(trial_state)
            if trial.get("status") == "TERMINATED":
                done.add(trial["trial_id"])
    return done


def _trial_runs(client: MlflowClient, state) -> list:
    return client.search_runs(
        [state.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{state.parent_run_id}'"
    )


def _cli(args: list[str]) -> int:
    # CLI's commands in this process (Ray is the session's: connect() finds it initialised).
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    run.register(sub)
    resume.register(sub)
    parsed = parser.parse_args(args)
    return parsed.handler(parsed)


def test_killed_sweep_resumes_under_same_parent(ray_cluster, tmp_path: Path) -> None:
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(SPEC)
    run_root, log = tmp_path / "run", tmp_path / "cli.log"
    address = ray_cluster.get_runtime_context().gcs_address
    proc = _start(["run", str(spec_path), "--run-dir", str(run_root)], address, log)
    try:
        deadline = time.monotonic() + DEADLINE_S
        finished: list = []
        while not finished:
            assert proc.poll() is None, f"sislab run ended early:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no trial finished in time"
            if (run_root / "sweep.json").exists():
                state = RunDir.existing(run_root).load_state()
                client = MlflowClient(state.tracking_uri)
                runs = _trial_runs(client, state)
                failed = [r.info.run_name for r in runs if r.info.status == "FAILED"]
                assert not failed, f"trials failed: {failed}\n{log.read_text()[-3000:]}"
                terminated = _tune_terminated(run_root)
                finished = [
                    r
                    for r in runs
                    if r.info.status == "FINISHED" and r.data.tags["sislab.trial_id"] in terminated
                ]
            time.sleep(0.5)
    finally:
        _kill_group(proc)  # SIGKILL: no cleanup in the driver
    assert len(finished) < 3, "the sweep ended before it was killed"
    done = {r.data.tags["sislab.trial_id"]: r.info.run_id for r in finished}
    before = {
        run_id: [(m.step, m.value) for m in client.get_metric_history(run_id, "train/loss_g")]
        for run_id in done.values()
    }
    assert RunDir.existing(run_root).load_state().status == "RUNNING"

    rc = _cli(["resume", str(run_root)])
    assert rc == 0, (run_root / "logs" / "ray.log").read_text()[-3000:]

    state = RunDir.existing(run_root).load_state()
    assert state.status == "FINISHED"
    client = MlflowClient(state.tracking_uri)
    assert client.get_run(state.parent_run_id).info.status == "FINISHED"
    assert client.get_run(state.parent_run_id).data.tags["sislab.resumed"] == "true"
    runs = _trial_runs(client, state)
    trial_ids = [r.data.tags["sislab.trial_id"] for r in runs]
    assert len(runs) == 3 and len(set(trial_ids)) == 3  # every trial exactly once
    assert sorted(r.data.params["train.lr_g"] for r in runs) == ["0.0001", "0.0002", "0.0003"]
    assert all(r.info.status == "FINISHED" for r in runs)
    for run_id, history in before.items():  # finished trials were not trained again
        after = [(m.step, m.value) for m in client.get_metric_history(run_id, "train/loss_g")]
        assert after == history
        assert not client.get_metric_history(run_id, "train/resumed_from_iteration")
    experiments = [e.name for e in client.search_experiments()]
    assert experiments.count("e2e-resume") == 1
