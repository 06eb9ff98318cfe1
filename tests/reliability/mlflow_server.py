"""A real ``mlflow server`` subprocess (sqlite backend, 127.0.0.1) that tests stop and restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

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
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        """Start the server and wait until it answers; returns the seconds that took."""
        begin = time.monotonic()
        # An already-migrated store: a new sqlite store's migrations take seconds at first start.
        prepare_sqlite_store(self.root / "mlflow.db")
        mlflow = Path(sys.executable).with_name("mlflow")
        log = (self.root / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{self.root}/mlflow.db",
             "--artifacts-destination", str(self.root / "artifacts"), "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
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
