"""A chaos run: ``sislab run`` under a seeded fault schedule, ``sislab resume`` after the Tune
driver's kill, then the invariants (``chaos.invariants``).

The sweep runs as a subprocess (the Tune driver that gets killed) on a Ray cluster this process
is connected to: the one at ``address``, or a local Ray started here. This process watches the
sweep's progress in MLflow and fires the faults (``chaos.schedule``) one after the other. With
``test_servers``, sislab first starts an S3 server (moto) and an ``mlflow server`` that it owns,
moves the sweep's storage, tracking and local datasets onto them, and adds their faults.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
import yaml
from mlflow.tracking import MlflowClient

from sislab.chaos import kills
from sislab.chaos.invariants import Check, Figures, check_invariants
from sislab.chaos.schedule import (
    MLFLOW_RESTART,
    S3_OUTAGE,
    TRIAL_DRIVER_KILL,
    TUNE_DRIVER_KILL,
    WORKER_KILL,
    Fault,
    draw_schedule,
)
from sislab.errors import SislabError
from sislab.orchestrator.run_dir import TUNE_EXPERIMENT, RunDir
from sislab.spec.loader import load_spec
from sislab.spec.spec import Spec

logger = logging.getLogger(__name__)

POLL_S = 0.2
# The sweep's progress is read from MLflow (a runs search on the tracking server): each read costs
# the server and this process a few milliseconds of CPU, which at POLL_S cost a 2-core test
# machine ~20 s of CPU per chaos run. A fault then lands up to a second after its drawn point
# (a sweep logs a step every ~0.5-1 s at the test's sizes), on top of its drawn delay.
PROGRESS_POLL_S = 1.0
FIND_VICTIM_S = 60.0  # longest a kill waits for a process of its kind to be alive
TEST_BUCKET = "sislab-chaos"


@dataclass
class Injected:
    """A fault as it happened: when (seconds since the sweep started), at which progress."""

    fault: Fault
    at_s: float
    progress: float
    detail: str


@dataclass
class ChaosResult:
    """A chaos run's schedule, the faults injected, the invariants and their figures."""

    run_dir: Path
    schedule: list[Fault]
    injected: list[Injected]
    checks: list[Check]
    figures: Figures
    wall_s: float
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every fault of the schedule injected and every invariant held."""
        return len(self.injected) == len(self.schedule) and all(c.ok for c in self.checks)


def _stage(spec_path: Path, out: Path, s3, mlflow_server) -> Path:
    """The spec with tracking on the MLflow test server, storage and local datasets (folders
    holding a dataset.json, wherever the spec names them: dataset.uri, search grids) on S3."""
    import boto3

    data = yaml.safe_load(spec_path.read_text())
    client = boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=TEST_BUCKET)
    uploaded: dict[str, str] = {}

    def upload(folder: Path) -> str:
        prefix = f"data/{len(uploaded)}-{folder.name}"
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                client.upload_file(str(path), TEST_BUCKET, f"{prefix}/{path.relative_to(folder)}")
        return f"s3://{TEST_BUCKET}/{prefix}"

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str) and "://" not in node:
            folder = (spec_path.parent / node).expanduser()
            if (folder / "dataset.json").is_file():
                if node not in uploaded:
                    uploaded[node] = upload(folder.resolve())
                return uploaded[node]
        return node

    data = walk(data)
    data["tracking"] = {**(data.get("tracking") or {}), "uri": mlflow_server.uri}
    data["storage"] = {
        "uri": f"s3://{TEST_BUCKET}/sweeps/{data.get('name', 'chaos')}",
        "endpoint_override": s3.endpoint,
        "region": "us-east-1",
    }
    if uploaded:
        data["dataset"] = {
            **data["dataset"],
            "endpoint_override": s3.endpoint,
            "region": "us-east-1",
        }
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def _iterations(spec: Spec) -> int:
    """Training steps of one trial (epochs x iterations per epoch) of the base spec."""
    from sislab.datasets.synthetic import parse_synthetic_uri
    from sislab.trainers.build import per_worker_batch

    if spec.dataset.uri.startswith("synthetic://"):
        rows = parse_synthetic_uri(spec.dataset.uri).num
    else:
        from sislab.datasets.pipeline import split_rows

        rows = split_rows(spec.dataset, spec.dataset.train_split)
    per_epoch = rows // spec.resources.num_workers // per_worker_batch(spec)
    if spec.train.max_iters_per_epoch is not None:
        per_epoch = min(per_epoch, spec.train.max_iters_per_epoch)
    return spec.train.epochs * max(per_epoch, 1)


class _Sweep:
    """The ``sislab run`` / ``sislab resume`` subprocess and the sweep's progress."""

    def __init__(self, spec_path: Path, run_root: Path, address: str, log: Path) -> None:
        self.spec_path, self.run_root, self.address, self.log = spec_path, run_root, address, log
        self.proc: subprocess.Popen | None = None
        self.client: MlflowClient | None = None
        self.state = None

    def start(self, command: str) -> None:
        args = [str(self.spec_path)] if command == "run" else []
        args = [command, *args] if command == "run" else [command, str(self.run_root)]
        if command == "run":
            args += ["--run-dir", str(self.run_root)]
        env = dict(os.environ)
        # Tune saves its experiment state every second (default: at most every 10 s), so that
        # a kill of the driver loses little of it.
        env.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sislab.cli.main", *args, "--address", self.address],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )  # fmt: skip

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(60)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def steps(self) -> int:
        """Training steps logged so far, all trials together (0 while nothing is known)."""
        if self.state is None:
            if not (self.run_root / "sweep.json").exists():
                return 0
            self.state = RunDir.existing(self.run_root).load_state()
            self.client = MlflowClient(self.state.tracking_uri)
        try:
            runs = self.client.search_runs(
                [self.state.experiment_id],
                filter_string=f"tags.`mlflow.parentRunId` = '{self.state.parent_run_id}'",
            )
        except Exception:  # MLflow restarting: no news
            return -1
        total = 0
        for run in runs:
            steps = [m.step for m in run.to_proto().data.metrics if m.key.startswith("train/loss")]
            total += max(steps, default=0)
        return total


def _tune_state_saved(storage: tuple[str, Any]) -> bool:
    import pyarrow.fs as pafs

    path, fs = storage
    fs = fs or pafs.LocalFileSystem()
    try:
        infos = fs.get_file_info(pafs.FileSelector(f"{path}/{TUNE_EXPERIMENT}"))
    except (OSError, FileNotFoundError):
        return False
    return any(i.base_name.startswith("experiment_state") for i in infos)


def _inject(fault: Fault, sweep: _Sweep, servers: dict, storage) -> str:
    """Apply one fault; what was done, for the table."""
    if fault.kind in (WORKER_KILL, TRIAL_DRIVER_KILL):
        name = kills.TRAIN_WORKER_CLASS if fault.kind == WORKER_KILL else kills.TRIAL_ACTOR_CLASS
        deadline = time.monotonic() + FIND_VICTIM_S
        while sweep.running() and time.monotonic() < deadline:
            victim = kills.kill_one(name, fault.pick)
            if victim is not None:
                return f"SIGKILL {victim['ActorClassName']} pid {victim['Pid']}"
            time.sleep(POLL_S)
        return ""
    if fault.kind == TUNE_DRIVER_KILL:
        deadline = time.monotonic() + FIND_VICTIM_S
        while not _tune_state_saved(storage) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        pid = sweep.proc.pid
        sweep.kill()
        began = time.monotonic()
        sweep.start("resume")
        return f"SIGKILL sislab run (pid {pid}); sislab resume started {time.monotonic() - began:.1f} s later"
    if fault.kind == S3_OUTAGE:
        servers["s3"].stop()
        time.sleep(fault.duration_s)
        servers["s3"].start()
        return f"S3 server stopped for {fault.duration_s:.0f} s"
    if fault.kind == MLFLOW_RESTART:
        servers["mlflow"].stop()
        took = servers["mlflow"].start()
        return f"MLflow server killed, answered again after {took:.1f} s"
    raise ValueError(fault.kind)


def run_chaos(
    spec_path: Path,
    seed: int,
    *,
    run_root: Path,
    address: str | None = None,
    test_servers: bool = False,
    worker_kills: int = 3,
    outage_s: float = 20.0,
    deadline_s: float = 3600.0,
) -> ChaosResult:
    """Run the spec's sweep under the seed's fault schedule and check the invariants.

    Args:
        spec_path: The sweep's spec.
        seed: Seed of the schedule (which faults, in which order, at which progress, which
            process).
        run_root: Folder of the chaos run: the staged spec, logs and the sweep's run folder.
        address: Ray cluster to run on (None: a local Ray started here).
        test_servers: Start an S3 (moto) and an MLflow server owned by this run, move the
            sweep's storage, tracking and local datasets onto them and add their faults.
        worker_kills: Train workers killed.
        outage_s: How long the S3 server is down.
        deadline_s: Longest the sweep may take.

    Raises:
        SislabError: The sweep did not end by the deadline.
    """
    from sislab.chaos.servers import MlflowTestServer, S3TestServer
    from sislab.cli.search import show_data
    from sislab.orchestrator.sweep import storage_target

    run_root.mkdir(parents=True, exist_ok=True)
    load_spec(spec_path)  # a spec error surfaces here, before any server starts
    servers: dict[str, Any] = {}
    sweep: _Sweep | None = None
    try:
        if test_servers:
            for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                os.environ.setdefault(name, "chaos-test")  # moto accepts any key
            servers["s3"] = S3TestServer()
            servers["s3"].start()
            servers["mlflow"] = MlflowTestServer(run_root / "mlflow-server")
            servers["mlflow"].start()
            spec_path = _stage(spec_path, run_root / "spec.yaml", servers["s3"], servers["mlflow"])
        spec = load_spec(spec_path)
        expected = int(show_data(str(spec_path), None)["count"])
        total_steps = expected * _iterations(spec)
        schedule = draw_schedule(
            seed, worker_kills=worker_kills, test_servers=test_servers, outage_s=outage_s
        )
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        gcs = ray.get_runtime_context().gcs_address
        sweep_root = run_root / "run"
        sweep = _Sweep(spec_path, sweep_root, gcs, run_root / "sweep.log")
        began = time.monotonic()

        def within_deadline() -> None:
            if time.monotonic() - began > deadline_s:
                raise SislabError(
                    f"the chaos sweep did not end in {deadline_s:.0f} s; see {sweep.log}",
                    fix="raise the deadline, or look for the stuck trial in the log",
                )

        sweep.start("run")
        storage: tuple[str, Any] | None = None
        injected: list[Injected] = []
        for fault in schedule:
            progress = 0.0
            while sweep.running():
                within_deadline()  # a sweep that stops making progress must not wait forever
                steps = sweep.steps()
                progress = max(progress, steps / total_steps)
                if progress >= fault.at_progress:
                    break
                time.sleep(PROGRESS_POLL_S)
            if not sweep.running():
                break
            time.sleep(fault.delay_s)
            if storage is None:
                storage = storage_target(spec, RunDir.existing(sweep_root))
            detail = _inject(fault, sweep, servers, storage)
            if detail:
                injected.append(Injected(fault, time.monotonic() - began, progress, detail))
        while sweep.running():
            within_deadline()
            time.sleep(1.0)
        wall = time.monotonic() - began
        run_dir = RunDir.existing(sweep_root)
        checks, figures = check_invariants(
            run_dir, spec, expected, storage or storage_target(spec, run_dir)
        )
        checks.insert(
            0,
            Check(
                "every fault of the schedule injected",
                len(injected) == len(schedule),
                f"{len(injected)} of {len(schedule)}; last command exit {sweep.proc.returncode}",
            ),
        )
        return ChaosResult(sweep_root, schedule, injected, checks, figures, wall)
    finally:
        if sweep is not None and sweep.running():  # a deadline, or this process interrupted
            sweep.kill()
        for server in servers.values():
            with contextlib.suppress(Exception):
                server.stop()
