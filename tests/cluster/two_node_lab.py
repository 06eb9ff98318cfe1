"""A throw-away lab on this machine: moto S3, an ``mlflow server`` with S3 artifacts, and a two-node
Ray cluster on loopback, every process started here and stopped here by its own process group.

``ray stop`` is never used: it stops every Ray process on the machine, including other sessions'.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from sislab.orchestrator.mlflow_store import prepare_sqlite_store

READY_TIMEOUT_S = 120.0  # Ray and MLflow start in seconds, slower on a loaded 2-core machine
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    check, what: str, procs: list[subprocess.Popen], timeout_s: float = READY_TIMEOUT_S
) -> None:
    """Poll ``check`` until it is true (a readiness wait on external processes ``procs``)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{what}: {proc.args[:3]} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout_s:.0f}s")
        time.sleep(0.5)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@dataclass
class Lab:
    """Addresses of the running services and the processes to stop."""

    env: dict[str, str]
    s3_endpoint: str
    mlflow_uri: str
    ray_address: str
    dashboard_url: str | None
    temp_dir: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def start(self, argv: list[str], log: Path) -> subprocess.Popen:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.processes.append(proc)
        return proc

    def python(self, code: str, timeout_s: float = 300) -> str:
        """Run Python in a fresh interpreter with the lab's environment; its stdout."""
        done = subprocess.run(
            [sys.executable, "-c", code], env=self.env, capture_output=True, text=True,
            timeout=timeout_s, check=True,
        )  # fmt: skip
        return done.stdout

    def ray_nodes_alive(self) -> int:
        code = (
            f"import ray; ray.init(address={self.ray_address!r}, log_to_driver=False); "
            "print(sum(1 for n in ray.nodes() if n['Alive']))"
        )
        return int(self.python(code).strip().splitlines()[-1])

    def train_worker_nodes(self) -> dict[str, str]:
        """Actor id -> node id of every RayTrainWorker the cluster ran (GCS actor table)."""
        code = (
            f"import json, ray; ray.init(address={self.ray_address!r}, log_to_driver=False); "
            "from ray._private import state; "
            "print(json.dumps({k: v['Address']['NodeID'] for k, v in state.actors().items() "
            "if v['ActorClassName'].endswith('RayTrainWorker')}))"
        )
        return json.loads(self.python(code).strip().splitlines()[-1])

    def stop(self) -> None:
        """Stop every process this lab started (by process group), then stragglers by temp dir."""
        # SIGKILL at once: nothing of this lab is kept (its folders are removed below), and a
        # `ray start --block` node given SIGTERM takes up to half a minute to stop.
        for proc in reversed(self.processes):
            _kill_group(proc, signal.SIGKILL)
        for proc in reversed(self.processes):
            proc.wait(timeout=30)
        for pid in _pids_mentioning(str(self.temp_dir)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _pids_mentioning(marker: str) -> list[int]:
    """Processes whose command line names ``marker`` (this lab's own Ray temp dir)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if marker.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
    return pids


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def dashboard_available() -> bool:
    """Whether this Ray install can run the dashboard (the Jobs API needs ``ray[default]``)."""
    from ray._private.utils import get_dashboard_dependency_error

    return get_dashboard_dependency_error() is None


def start_lab(base: Path, s3_endpoint: str) -> Lab:
    """MLflow server (artifacts on s3://mlflow) and a head + worker Ray node on 127.0.0.1."""
    temp_dir = Path(tempfile.mkdtemp(prefix="slray-", dir="/tmp"))  # short: Ray's socket paths
    env = dict(os.environ)
    env.update(
        RAY_AUTH_MODE="disabled",  # the same in every process (ray-notes: InvalidAuthToken)
        RAY_TMPDIR=str(temp_dir),
        RAY_USAGE_STATS_ENABLED="0",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_ENDPOINT_URL=s3_endpoint,
        MLFLOW_S3_ENDPOINT_URL=s3_endpoint,
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    mlflow_port, gcs_port = free_port(), free_port()
    with_dashboard = dashboard_available()
    dashboard_port = free_port() if with_dashboard else None
    lab = Lab(
        env=env,
        s3_endpoint=s3_endpoint,
        mlflow_uri=f"http://127.0.0.1:{mlflow_port}",
        ray_address=f"127.0.0.1:{gcs_port}",
        dashboard_url=f"http://127.0.0.1:{dashboard_port}" if with_dashboard else None,
        temp_dir=temp_dir,
    )
    try:
        # An already-migrated store: a new sqlite store's migrations take seconds at first start.
        prepare_sqlite_store(base / "mlflow.db")
        lab.start(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
             f"sqlite:///{base / 'mlflow.db'}", "--artifacts-destination", "s3://mlflow/artifacts",
             "--serve-artifacts", "--host", "127.0.0.1", "--port", str(mlflow_port),
             "--workers", "1"],
            base / "mlflow.log",
        )  # fmt: skip
        common = ["--node-ip-address=127.0.0.1", "--num-cpus=2", "--block",
                  f"--temp-dir={temp_dir}", "--disable-usage-stats"]  # fmt: skip

        def node_ports() -> list[str]:
            # Explicit ports: the agent's default (52365) collides with any other Ray here.
            return [f"--dashboard-agent-listen-port={free_port()}"]

        dashboard = (
            ["--include-dashboard=true", "--dashboard-host=127.0.0.1",
             f"--dashboard-port={dashboard_port}"]
            if with_dashboard else ["--include-dashboard=false"]
        )  # fmt: skip
        lab.start(
            [str(BIN / "ray"), "start", "--head", f"--port={gcs_port}", *common, *node_ports(),
             *dashboard, '--resources={"nodeA": 1}'],
            base / "ray-head.log",
        )  # fmt: skip
        wait_until(lambda: _port_open(gcs_port), "Ray head", lab.processes)
        lab.start(
            [str(BIN / "ray"), "start", f"--address={lab.ray_address}", *common, *node_ports(),
             '--resources={"nodeB": 1}'],
            base / "ray-worker.log",
        )  # fmt: skip
        wait_until(lambda: lab.ray_nodes_alive() == 2, "second Ray node", lab.processes)
        wait_until(lambda: _http_ok(f"{lab.mlflow_uri}/health"), "MLflow server", lab.processes)
        if lab.dashboard_url:
            wait_until(
                lambda: _http_ok(f"{lab.dashboard_url}/api/version"), "Jobs API", lab.processes
            )
    except BaseException:
        lab.stop()
        raise
    return lab
