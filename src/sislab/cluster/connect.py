"""Connecting to Ray from the sislab driver, with Ray's own output sent to the run's log file, and
the checks that a sweep's tracking and storage can be reached from every node of the cluster."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from urllib.parse import urlsplit

import ray

from sislab.cluster.address import (
    RAY_ADDRESS_ENV,
    check_reachable,
    find_cluster,
    is_local_address,
)
from sislab.errors import ClusterError

logger = logging.getLogger(__name__)

# Stores that live on the driver's disk: a worker on another node cannot write to them.
NODE_LOCAL_TRACKING_SCHEMES = ("", "file", "sqlite")


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


def connect(
    address: str | None,
    log_file: Path,
    num_cpus: int | None = None,
    *,
    warm_up_data: bool = False,
) -> threading.Thread | None:
    """Start or join Ray: a new local instance by default, or the cluster at ``address``.

    Runs on the sislab driver. With ``warm_up_data``, a new local Ray is warmed up for the data
    pipeline on a background thread (``datasets.warm_up``), which is returned; otherwise (and
    when joining a cluster) None.

    Args:
        address: ``None`` or ``local`` for a new local Ray, ``auto`` or ``HOST:PORT`` or
            ``ray://HOST:10001`` for an existing cluster.
        log_file: Where Ray's driver-side logs go.
        num_cpus: CPUs of a new local Ray (default: all).
        warm_up_data: Whether Ray Data will read datasets on this Ray (not for synthetic://
            layouts, which the workers render: the warm-up would only take CPU from them).

    Raises:
        ClusterError: ``address`` names a cluster that cannot be reached (or ``auto`` finds none).
    """
    # Tune's console reporter and Train's V2 banner are replaced by sislab's own view.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    route_ray_logs(log_file)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    if ray.is_initialized():
        return None
    local = is_local_address(address)
    if local:
        if os.environ.get(RAY_ADDRESS_ENV):
            logger.warning(
                "RAY_ADDRESS=%s is set but not used: sislab starts a new local Ray unless "
                "given --address (pass --address auto to join that cluster)",
                os.environ[RAY_ADDRESS_ENV],
            )
        # No dashboard (a head process and a dozen module processes): nothing sislab runs
        # needs it; the placement groups of stopped trials are freed through the GCS
        # (``orchestrator.placement_groups``), not through its state API.
        _init(address="local", num_cpus=num_cpus, include_dashboard=False)
        if not warm_up_data:
            return None
        from sislab.datasets.warm_up import start_warm_up

        return start_warm_up()
    # Ray's own connect retries a dead address for minutes, printing "Failed to connect to GCS"
    # (issue 20 item 7): check first, naming the address and where it came from.
    found = find_cluster(address)
    check_reachable(found)
    try:
        # The caller's own `auto`, not the address found: Ray's token-auth detection applies
        # only to clusters it finds itself.
        _init(address=address, num_cpus=None, include_dashboard=None)
    except (ConnectionError, RuntimeError) as err:
        raise ClusterError(
            f"cannot join the Ray cluster at {found.address} ({found.origin}): "
            f"{str(err).splitlines()[0]}",
            fix=found.fix,
        ) from err
    return None


def _init(address: str, num_cpus: int | None, include_dashboard: bool | None) -> None:
    # address "local", not None, for a new Ray: None would join whatever RAY_ADDRESS or Ray's
    # ray_current_cluster file names, and a `ray start` that died uncleanly leaves that file
    # pointing at nothing.
    ray.init(
        address=address,
        num_cpus=num_cpus,
        include_dashboard=include_dashboard,
        log_to_driver=False,
        configure_logging=True,
        logging_level=logging.WARNING,
    )


def alive_node_count() -> int:
    """Alive nodes of the connected cluster (the head included)."""
    return sum(1 for node in ray.nodes() if node.get("Alive"))


def check_reachable_from_workers(
    tracking_uri: str, storage_uri: str | None, num_nodes: int
) -> None:
    """Refuse node-local MLflow stores on a multi-node cluster; warn about node-local storage.

    Rank 0 of a trial writes to MLflow from whichever node it lands on, so an sqlite file or
    folder on the driver's disk would receive nothing (or a second, diverging copy) from workers
    elsewhere: an error. A local storage folder is only a warning, since it may be a shared
    (NFS) mount on every node; Ray needs storage all nodes share for multi-node checkpoints
    (ray #37177).

    Args:
        tracking_uri: The sweep's MLflow tracking URI.
        storage_uri: The spec's ``storage.uri`` (None: the run folder).
        num_nodes: Alive nodes of the cluster.

    Raises:
        ClusterError: A node-local tracking store on more than one node.
    """
    node_local = urlsplit(tracking_uri).scheme in NODE_LOCAL_TRACKING_SCHEMES
    if num_nodes < 2:
        if node_local:
            logger.warning(
                "MLflow tracks to %s on this machine: fine on a one-node cluster, but set "
                "tracking.uri to a server (http://...) before the cluster adds nodes",
                tracking_uri,
            )
        return
    if node_local:
        raise ClusterError(
            f"the cluster has {num_nodes} nodes but MLflow tracks to {tracking_uri}, a store on "
            "this machine that workers on other nodes cannot write to",
            fix="start a shared server (`sislab mlflow serve ...`) and set "
            "`tracking: {uri: http://HOST:5000}` in the spec (see docs/cluster.md)",
        )
    if not storage_uri or "://" not in storage_uri:
        logger.warning(
            "the cluster has %d nodes and storage is the local folder %s: checkpoints survive "
            "only if it is a shared mount on every node; set `storage: s3://bucket/prefix`",
            num_nodes,
            storage_uri or "(the run folder)",
        )
