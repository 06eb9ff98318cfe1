"""Which existing Ray cluster ``--address`` names, where that address came from, and a quick check
that a Ray head answers there before Ray's own connect (which retries a dead address for minutes,
printing "Failed to connect to GCS")."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from sislab.errors import ClusterError

# Ray's environment variable for the cluster to join (read by ray.init for None and "auto").
RAY_ADDRESS_ENV = "RAY_ADDRESS"
# A dead local port is refused at once; an unroutable or firewalled host hangs until this
# timeout: the whole check stays well under the 15 s a user should wait for an error.
PROBE_TIMEOUT_S = 10.0
# ray:// addresses (Ray Client) without a port use the client server's default port.
RAY_CLIENT_PORT = 10001
LOCAL_RUN_FIX = "or leave out --address to run on a new local Ray"


@dataclass(frozen=True)
class FoundAddress:
    """An existing cluster's address and where it came from.

    Attributes:
        address: ``HOST:PORT`` of the head's GCS, or ``ray://HOST:PORT`` for Ray Client.
        origin: Where the address came from, for messages (``--address``, ``RAY_ADDRESS``, the
            ``ray_current_cluster`` file, a running ``gcs_server``).
        fix: What to do when nothing answers there.
    """

    address: str
    origin: str
    fix: str


def ray_address_file() -> str:
    """The ``ray_current_cluster`` file where ``ray start`` records its head's address.

    It lives in Ray's temp dir (``$RAY_TMPDIR/ray``, else ``$TMPDIR/ray``, else ``/tmp/ray``),
    and a ``ray start`` that died without ``ray stop`` (killed, OOM) leaves it behind.
    """
    from ray._common.utils import get_ray_address_file

    return get_ray_address_file(None)


def find_cluster(address: str) -> FoundAddress:
    """Resolve ``auto`` (or take ``HOST:PORT``/``ray://...`` as given) the way ``ray.init`` does.

    ``auto`` looks at ``RAY_ADDRESS``, then the ``ray_current_cluster`` file, then the
    ``gcs_server`` processes running on this machine.

    Args:
        address: ``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``.

    Raises:
        ClusterError: ``auto`` and no cluster is named anywhere.
    """
    if address != "auto":
        return FoundAddress(
            address,
            "given by --address",
            "start the cluster (`ray start --head` on its head node) and check HOST:PORT (the "
            f"head's GCS port, 6379 by default) and the firewall, {LOCAL_RUN_FIX}",
        )
    env = os.environ.get(RAY_ADDRESS_ENV, "")
    if env and env != "auto":
        return FoundAddress(
            env,
            f"from {RAY_ADDRESS_ENV} (--address auto)",
            f"point {RAY_ADDRESS_ENV} at a running head or unset it, {LOCAL_RUN_FIX}",
        )
    path = ray_address_file()
    if os.path.exists(path):
        with open(path) as f:
            recorded = f.read().strip()
        if recorded:
            return FoundAddress(
                recorded,
                f"from {path}, left by the last `ray start` on this machine (--address auto)",
                "that cluster is gone: run `ray stop` to clear the file, start one with "
                f"`ray start --head`, {LOCAL_RUN_FIX}",
            )
    # Ray's legacy fallback for auto: any GCS process on this machine (found with pgrep).
    from ray._private.services import find_gcs_addresses

    running = sorted(find_gcs_addresses())
    if running:
        return FoundAddress(
            running[0],
            "from a gcs_server process running on this machine (--address auto)",
            f"pass that cluster's --address HOST:PORT, {LOCAL_RUN_FIX}",
        )
    raise ClusterError(
        f"--address auto found no Ray cluster: {RAY_ADDRESS_ENV} is unset, {path} does not "
        "exist and no gcs_server runs on this machine",
        fix=f"start one with `ray start --head` or pass --address HOST:PORT, {LOCAL_RUN_FIX}",
    )


def is_local_address(address: str | None) -> bool:
    """Whether ``address`` asks for a new local Ray rather than an existing cluster."""
    return address in (None, "", "local")


def check_cluster_address(address: str | None) -> None:
    """Fail at once when ``address`` names a cluster to join (not a new local Ray: None, empty or
    ``local``) where no Ray head answers: what ``sislab run``/``resume`` check before the spec's
    preflight, which builds models for seconds.

    Raises:
        ClusterError: As :func:`find_cluster` and :func:`check_reachable`.
    """
    if not is_local_address(address):
        check_reachable(find_cluster(address))


def check_reachable(found: FoundAddress, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Fail at once when no Ray head answers at ``found.address``.

    A GCS address gets gRPC's standard health check, which Ray's GCS serves (a dead port, a
    port that is not a GCS and a host that drops packets all fail within ``timeout_s``); a
    ``ray://`` address (or a cluster with TLS, which this check does not speak) gets a TCP
    connect.

    Args:
        found: The cluster to join.
        timeout_s: Longest wait.

    Raises:
        ClusterError: The address is malformed, or nothing (or something other than a Ray GCS)
            answers there; the message names the address, its origin and the fix.
    """
    host, port = _host_port(found)
    tls = os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true")
    problem = (
        _tcp_problem(host, port, timeout_s)
        if found.address.startswith("ray://") or tls
        else _gcs_problem(host, port, timeout_s)
    )
    if problem:
        raise ClusterError(
            f"no Ray cluster answers at {found.address} ({found.origin}): {problem}",
            fix=found.fix,
        )


def _tcp_problem(host: str, port: int, timeout_s: float) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except TimeoutError:
        return f"no answer in {timeout_s:.0f} s"
    except OSError as err:
        return err.strerror or repr(err)


def _gcs_problem(host: str, port: int, timeout_s: float) -> str | None:
    import grpc  # a dependency of Ray

    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    with grpc.insecure_channel(target) as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=bytes,
            response_deserializer=bytes,
        )
        try:
            check(b"", timeout=timeout_s)  # empty HealthCheckRequest: the whole server
            return None
        except grpc.RpcError as err:
            code = err.code()
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return None  # a head with token auth answered: ray.init presents the token
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"no answer in {timeout_s:.0f} s"
    if code == grpc.StatusCode.UNAVAILABLE:
        # Why (refused, unresolvable): the TCP error says it better than gRPC's text.
        return _tcp_problem(host, port, min(timeout_s, 2.0)) or "the server is unavailable"
    return f"something answers there, but not a Ray GCS (gRPC {code.name})"


def _host_port(found: FoundAddress) -> tuple[str, int]:
    ray_client = found.address.startswith("ray://")
    target = found.address if ray_client else f"//{found.address}"
    try:
        parts = urlsplit(target)
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if ray_client and host and port is None:
        port = RAY_CLIENT_PORT
    if not host or port is None:
        raise ClusterError(
            f"Ray address {found.address!r} ({found.origin}) is not HOST:PORT or ray://HOST:PORT",
            fix=found.fix,
        )
    if not ray_client:
        # What ray.init connects to: it maps 127.0.0.1/localhost to this node's IP.
        from ray._private.services import resolve_ip_for_localhost

        host = resolve_ip_for_localhost(host)
    return host, port
