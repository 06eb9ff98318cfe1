"""A real ``mlflow server`` subprocess (sqlite backend, 127.0.0.1) that tests stop and restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from sislab.cluster.mlflow_auth import auth_environ, write_auth_config
from sislab.cluster.mlflow_server import serve_command
from sislab.orchestrator.mlflow_store import prepare_sqlite_store

START_TIMEOUT_S = 120


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlflowServer:
    """``mlflow server`` on a fixed port; ``stop`` and ``start`` keep the port and the store.

    Args:
        root: Folder of the sqlite database, the artifacts and the server log.
        admin_password: Run MLflow's basic-auth app (``sislab mlflow serve --auth``) with this
            admin password; its config and user database go to ``root / "auth"``.
    """

    def __init__(self, root: Path, admin_password: str | None = None) -> None:
        self.root = root
        self.admin_password = admin_password
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        """Start the server and wait until it answers; returns the seconds that took."""
        begin = time.monotonic()
        # An already-migrated store: a new sqlite store's migrations take seconds at first start.
        prepare_sqlite_store(self.root / "mlflow.db")
        log = (self.root / "server.log").open("ab")
        # The command `sislab mlflow serve` runs, and its environment.
        command = serve_command(
            f"sqlite:///{self.root}/mlflow.db", (self.root / "artifacts").as_uri(),
            port=self.port, auth=self.admin_password is not None,
        )  # fmt: skip
        env = dict(os.environ)
        if self.admin_password is not None:
            config = write_auth_config(self.root / "auth")
            env = auth_environ(os.environ, config, self.admin_password)
        self.proc = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        while time.monotonic() - begin < START_TIMEOUT_S:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited; see {self.root / 'server.log'}")
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=2) as answer:
                    if answer.status == 200:
                        return time.monotonic() - begin
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("mlflow server did not start")

    def stop(self) -> None:
        """Kill the server's process group (it runs workers) and wait for it."""
        if self.proc is None:
            return
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None
