"""A multi-node cluster needs a tracking server: node-local MLflow stores are refused; a new local
Ray is the default whatever stale cluster file lies around, and a dead address fails fast."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sislab.cluster.address import check_reachable, find_cluster
from sislab.cluster.connect import check_reachable_from_workers, is_local_address
from sislab.errors import ClusterError


@pytest.mark.parametrize("uri", ["sqlite:////runs/x/mlflow.db", "file:///runs/mlruns", "/runs/m"])
def test_node_local_tracking_on_two_nodes_is_an_error(uri: str) -> None:
    with pytest.raises(ClusterError, match=r"(?s)2 nodes.*sislab mlflow serve"):
        check_reachable_from_workers(uri, "s3://runs/x", num_nodes=2)


def test_server_tracking_passes_and_local_storage_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sislab.cluster.connect"):
        check_reachable_from_workers("http://mlflow:5000", "s3://runs/x", num_nodes=3)
        assert not caplog.records
        check_reachable_from_workers("http://mlflow:5000", None, num_nodes=3)
        assert "shared mount" in caplog.text


def test_one_node_with_sqlite_only_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sislab.cluster.connect"):
        check_reachable_from_workers("sqlite:////runs/x/mlflow.db", None, num_nodes=1)
    assert "before the cluster adds nodes" in caplog.text
    assert is_local_address(None) and is_local_address("local")
    assert not is_local_address("auto")


# A `ray start --head` that died uncleanly (issue 20 item 7) leaves Ray's ray_current_cluster file
# naming a port nobody listens on. Each test below runs in a subprocess with its own RAY_TMPDIR
# (never the machine's /tmp/ray, where other clusters may live), beside the session's Ray.


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def stale_ray_env() -> Iterator[tuple[dict[str, str], str]]:
    """An environment whose Ray temp dir holds a ray_current_cluster naming a dead port."""
    # Short path: Ray's unix sockets live under it (107-byte limit), so no pytest tmp_path.
    root = tempfile.mkdtemp(prefix="srt-", dir="/tmp")
    stale = f"127.0.0.1:{_dead_port()}"
    os.makedirs(os.path.join(root, "ray"))
    with open(os.path.join(root, "ray", "ray_current_cluster"), "w") as f:
        f.write(stale)
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "TMPDIR")}
    env.update(RAY_TMPDIR=root, RAY_AUTH_MODE="disabled")
    yield env, stale
    shutil.rmtree(root, ignore_errors=True)


NEW_LOCAL_RAY = """
import json, sys
from pathlib import Path
import ray
from sislab.cluster.connect import connect
connect(None, Path(sys.argv[1]), num_cpus=1)
joined = ray.get_runtime_context().gcs_address
value = ray.get(ray.remote(lambda: 41 + 1).remote())
ray.shutdown()
print(json.dumps({"gcs": joined, "value": value}))
"""


def test_default_starts_a_new_local_ray_despite_a_stale_cluster_file(
    stale_ray_env: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    env, stale = stale_ray_env
    done = subprocess.run(
        [sys.executable, "-c", NEW_LOCAL_RAY, str(tmp_path / "ray.log")],
        env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["value"] == 42
    assert out["gcs"].rsplit(":", 1)[1] != stale.rsplit(":", 1)[1]
    assert "Failed to connect to GCS" not in done.stderr


def test_address_auto_fails_fast_naming_the_stale_file(
    stale_ray_env: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    env, stale = stale_ray_env
    spec = Path(__file__).parents[2] / "examples" / "quickstart.yaml"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "sislab.cli.main", "run", str(spec), "--address", "auto",
         "--runs-root", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    elapsed_s = time.monotonic() - started
    print(f"sislab run --address auto on a stale cluster file: exit {done.returncode} after "
          f"{elapsed_s:.1f} s")  # fmt: skip
    assert done.returncode == 2, done.stderr[-3000:]
    port = stale.rsplit(":", 1)[1]
    path = os.path.join(env["RAY_TMPDIR"], "ray", "ray_current_cluster")
    assert re.search(
        rf"error: no Ray cluster answers at 127\.0\.0\.1:{port} \(from {re.escape(path)}, left "
        r"by the last `ray start` on this machine \(--address auto\)\): .*refused",
        done.stderr,
    ), done.stderr
    assert "Fix: that cluster is gone: run `ray stop`" in done.stderr
    assert "Failed to connect to GCS" not in done.stderr
    assert elapsed_s < 30
    # Nothing was started for a sweep that could not run: no MLflow store in the run folder.
    assert not list(tmp_path.glob("*/mlflow.db"))


def test_explicit_and_env_addresses_name_their_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    port = _dead_port()
    with pytest.raises(ClusterError, match=rf"127\.0\.0\.1:{port} \(given by --address\)"):
        check_reachable(find_cluster(f"127.0.0.1:{port}"))
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    with pytest.raises(ClusterError, match=r"(?s)from RAY_ADDRESS.*Fix: point RAY_ADDRESS"):
        check_reachable(find_cluster("auto"))
    with pytest.raises(ClusterError, match=r"'nonsense' \(given by --address\) is not HOST:PORT"):
        check_reachable(find_cluster("nonsense"))


def test_a_port_that_never_answers_fails_within_the_timeout() -> None:
    # A listener that accepts but never speaks: a hung head, or a firewall that holds connections.
    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))  # all interfaces: Ray maps 127.0.0.1 to the node's IP
        listener.listen()
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(ClusterError, match=r"answers at .* \(given by --address\): no answer"):
            check_reachable(find_cluster(address), timeout_s=1.0)
        assert time.monotonic() - started < 10


def test_run_and_resume_check_a_cluster_address_before_their_preflight() -> None:
    from sislab.cluster.address import check_cluster_address

    for local in (None, "", "local"):
        check_cluster_address(local)  # a new local Ray: nothing to reach yet
    port = _dead_port()
    with pytest.raises(ClusterError, match=rf"127\.0\.0\.1:{port} \(given by --address\)"):
        check_cluster_address(f"127.0.0.1:{port}")
