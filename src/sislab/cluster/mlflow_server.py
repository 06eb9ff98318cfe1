"""The shared MLflow server of a cluster: ``mlflow server`` with artifacts proxied to S3.

With ``--serve-artifacts`` the clients (rank 0 of every trial, the sweep driver) upload artifacts to
the server over HTTP and only the server holds S3 credentials; its S3 endpoint comes from
``MLFLOW_S3_ENDPOINT_URL`` (MinIO, Ceph, moto), its keys from the standard AWS chain.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from urllib.parse import urlsplit

from sislab.errors import ClusterError

ENDPOINT_VARIABLE = "MLFLOW_S3_ENDPOINT_URL"  # read by MLflow's S3 artifact repository


def serve_command(
    backend_store_uri: str,
    artifacts_destination: str,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 1,
    allowed_hosts: str | None = None,
    auth: bool = False,
) -> list[str]:
    """The ``mlflow server`` command line.

    Args:
        backend_store_uri: Runs, params and metrics: ``postgresql://...`` for a lab,
            ``sqlite:///path.db`` for one machine.
        artifacts_destination: Where the server stores artifacts, e.g. ``s3://bucket/mlflow``.
        host: Interface to listen on (``0.0.0.0`` to serve other machines).
        port: TCP port.
        workers: Server worker processes.
        allowed_hosts: Host headers the server answers besides localhost and private IPs, e.g.
            ``mlflow.lab.svc:5000`` (MLflow refuses others against DNS rebinding).
        auth: Run MLflow's basic-auth app (``cluster.mlflow_auth`` prepares its config and
            environment; the admin password is never an argument).

    Raises:
        ClusterError: A backend store URI with a password in it, or an artifacts destination
            that is not a URI.
    """
    if urlsplit(backend_store_uri).password:
        # A password on the command line is visible to every user of the machine (ps).
        raise ClusterError(
            "the backend store URI holds a password",
            fix="leave it out of the URI and give it through the database's own mechanism "
            "(e.g. PGPASSWORD or ~/.pgpass for PostgreSQL)",
        )
    if "://" not in artifacts_destination:
        raise ClusterError(
            f"--artifacts-destination {artifacts_destination!r} is not a URI",
            fix="use s3://bucket/prefix (or file:///path on one machine)",
        )
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", backend_store_uri,
        "--artifacts-destination", artifacts_destination,
        "--serve-artifacts",
        "--host", host, "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    if allowed_hosts:
        command += ["--allowed-hosts", allowed_hosts]
    if auth:
        from sislab.cluster.mlflow_auth import AUTH_APP

        command += ["--app-name", AUTH_APP]
    return command


def endpoint_note(artifacts_destination: str, environ: Mapping[str, str]) -> str:
    """One line on which S3 endpoint the server will use (never a credential)."""
    if not artifacts_destination.startswith("s3://"):
        return f"artifacts in {artifacts_destination}"
    endpoint = environ.get(ENDPOINT_VARIABLE)
    if endpoint:
        return f"artifacts in {artifacts_destination} via {ENDPOINT_VARIABLE}={endpoint}"
    return (
        f"artifacts in {artifacts_destination} on AWS S3 (set {ENDPOINT_VARIABLE} for MinIO or "
        "another S3-compatible store)"
    )
