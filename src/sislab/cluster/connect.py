"""Connecting to Ray from the sislab driver, with Ray's own output sent to the run's log file."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import ray


def route_ray_logs(log_file: Path) -> None:
    """Send Ray's Python loggers to ``log_file`` instead of the terminal."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("ray", "ray.tune", "ray.train", "ray.data"):
        target = logging.getLogger(name)
        for old in list(target.handlers):
            target.removeHandler(old)
        target.addHandler(handler)
        target.propagate = False


def connect(address: str | None, log_file: Path, num_cpus: int | None = None) -> None:
    """Start or join Ray: a local instance by default, or the cluster at ``address``.

    Args:
        address: ``None`` or ``local`` for a new local Ray, ``auto`` or ``HOST:PORT`` or
            ``ray://HOST:10001`` for an existing cluster.
        log_file: Where Ray's driver-side logs go.
        num_cpus: CPUs of a new local Ray (default: all).
    """
    # Tune's console reporter and Train's V2 banner are replaced by sislab's own view.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    route_ray_logs(log_file)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    if ray.is_initialized():
        return
    local = address in (None, "", "local")
    ray.init(
        address=None if local else address,
        num_cpus=num_cpus if local else None,
        include_dashboard=False if local else None,
        log_to_driver=False,
        configure_logging=True,
        logging_level=logging.WARNING,
    )
