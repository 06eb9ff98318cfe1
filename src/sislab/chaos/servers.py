"""Test servers a chaos run owns, so that it may stop them: S3 (moto) and ``mlflow server``.

Only servers sislab started here are ever stopped; a user's own S3 and tracking server are not
touched (their faults are left out of the schedule).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from sislab.cluster.mlflow_server import serve_command
from sislab.errors import SislabError
from sislab.orchestrator.mlflow_store import prepare_sqlite_store

START_TIMEOUT_S = 180


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class S3TestServer:
    """A moto S3 server on 127.0.0.1 in this process; ``stop``/``start`` keep port and buckets
    (moto keeps its buckets per process)."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server_class = ThreadedMotoServer
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = None

    def start(self) -> None:
        """Serve (again) on the same port."""
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # not a line per request
        self._server = self._server_class(ip_address="127.0.0.1", port=self.port)
        self._server.start()

    def stop(self) -> None:
        """Stop serving: requests get 'connection refused' until ``start``."""
        if self._server is not None:
            self._server.stop()
            self._server = None


class MlflowTestServer:
    """``mlflow server`` (sqlite store under ``root``) on 127.0.0.1, killed and started again on
    the same port and store.

    Args:
        root: Folder of the sqlite database, the artifacts and the server log.
        admin_password: Run MLflow's basic-auth app (``sislab mlflow serve --auth``) with this
            admin password, given to the server only through its environment; its config and
            user database go to ``root / "auth"``.
    """

    def __init__(self, root: Path, admin_password: str | None = None) -> None:
        self.root = root
        self.admin_password = admin_password
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        """Start and wait until it answers; returns the seconds that took."""
        begin = time.monotonic()
        self.root.mkdir(parents=True, exist_ok=True)
        prepare_sqlite_store(self.root / "mlflow.db")
        # The command `sislab mlflow serve` runs, and its environment.
        command = serve_command(
            f"sqlite:///{self.root}/mlflow.db", (self.root / "artifacts").as_uri(),
            port=self.port, auth=self.admin_password is not None,
        )  # fmt: skip
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        if self.admin_password is not None:
            from sislab.cluster.mlflow_auth import auth_environ, write_auth_config

            config = write_auth_config(self.root / "auth")
            env = auth_environ(env, config, self.admin_password)
        with (self.root / "server.log").open("ab") as log:
            self.proc = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        while time.monotonic() - begin < START_TIMEOUT_S:
            if self.proc.poll() is not None:
                raise SislabError(f"mlflow server exited; see {self.root / 'server.log'}")
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=2) as answer:
                    if answer.status == 200:
                        return time.monotonic() - begin
            except OSError:
                time.sleep(0.2)
        raise SislabError(f"mlflow server did not answer in {START_TIMEOUT_S} s")

    def stop(self) -> None:
        """SIGKILL its process group (gunicorn/uvicorn workers included)."""
        if self.proc is None:
            return
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None
