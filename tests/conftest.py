"""Session-wide fixtures: one local Ray cluster shared by every test that needs Ray."""

from __future__ import annotations

import os
import tempfile
import time
from functools import cache
from pathlib import Path

import pytest

# Tiny models on 2 cores shared by several processes (Ray workers, subprocesses): one intra-op
# thread per process avoids oversubscription, which made CPU tests several times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Fixed per-trial latencies of Ray Train, set before any Ray starts (the session's, and those of the
# subprocesses the cluster and resume tests launch, which inherit this environment):
# - the controller's poll of its workers (sislab's default 0.5 s, Ray's 2 s): every report after
#   a trial's first and every trial's end wait for the next poll;
# - the preemption watcher, one more actor process per trial that watches for node drains, which
#   no test makes.
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.1")
os.environ.setdefault("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "0")
# Ray Train's own Prometheus metrics (two callbacks per trial, nothing reads them here).
os.environ.setdefault("RAY_TRAIN_METRICS_ENABLED", "0")
# Ray's monitoring of itself, which nothing in the suite reads, cost ~0.3 of a core all along
# (py-spy over the method sweep: 37 s of CPU in the log monitor, 20 s in the dashboard agent):
# the log monitor globs the session's log folder every 0.1 s until it holds 1,000 files (each
# trial adds a few), and the dashboard agent walks every process's stats every 5 s.
os.environ.setdefault("RAY_LOG_MONITOR_MANY_FILES_THRESHOLD", "0")
os.environ.setdefault("LOG_NAME_UPDATE_INTERVAL_S", "5")
os.environ.setdefault("REPORTER_UPDATE_INTERVAL_MS", "60000")
# The `mlflow server`s tests start (reliability, cluster) would each also start MLflow's job
# runner, eight processes of its own for GenAI jobs no test uses: seconds of CPU per start.
os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")

# Tests never download: torch hub and the weights registry resolve into empty folders.
os.environ["TORCH_HOME"] = tempfile.mkdtemp(prefix="sislab-test-torch-home-")
os.environ["SISLAB_WEIGHTS_DIR"] = tempfile.mkdtemp(prefix="sislab-test-weights-")
# FID reference statistics are cached here; a user's cache must not leak into tests.
os.environ["SISLAB_CACHE_DIR"] = tempfile.mkdtemp(prefix="sislab-test-cache-")


# Test modules that share the session's Ray run as one pytest-xdist scope, on one worker, one at a
# time, as in a serial run: `make test` runs two workers, so the rest of the suite
# (single-threaded: OMP_NUM_THREADS=1) uses the second core meanwhile instead of queueing behind
# the sweeps. The modules that start Ray heads of their own (a two-node lab, a head with token
# auth) are a second scope, scheduled first on the other worker, so that they neither wait for
# the session's sweeps nor run beside each other. (Two sweep chains on three workers were tried:
# the sweeps are CPU-bound on 2 cores, so they only slowed each other down.) Every other module
# is a scope of its own, so that its module-scoped fixtures (a spawned DDP run, a trained model)
# are built once. (xdist's own `--dist loadgroup` reads groups from node ids, which pytest 9 no
# longer lets it rewrite.) The Makefile keeps xdist from reordering scopes by size
# (`--no-loadscope-reorder`), so these two start at once.
RAY_SCOPE = "ray"
OWN_HEADS_SCOPE = "ray-heads"
OWN_HEADS = (
    "tests/cluster/test_two_nodes.py",
    "tests/cluster/test_ray_token.py",
    "tests/cluster/test_connect.py",
)
# Session-Ray modules that spend much of their time waiting (the chaos run: outages, server
# restarts, a resumed driver): first in their chain, so that their waits overlap the other
# worker's CPU-bound tests instead of leaving a core idle at the end (measured: the suite's last
# ~200 s ran at 10-44% idle with the chaos run last).
RAY_FIRST = ("tests/reliability/test_chaos.py",)
TESTS = Path(__file__).resolve().parent


@cache
def _uses_session_ray(module: str) -> bool:
    return "ray_cluster" in (TESTS.parent / module).read_text()


def _scope(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    if module in OWN_HEADS:
        return OWN_HEADS_SCOPE
    return RAY_SCOPE if _uses_session_ray(module) else module


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The session's Ray modules first (``RAY_FIRST`` leading), then those with Ray heads of their
    own: the two longest chains start at once (stable: each part keeps its order)."""
    order = {RAY_SCOPE: 0, OWN_HEADS_SCOPE: 1}

    def key(item: pytest.Item) -> tuple[int, bool]:
        return order.get(_scope(item.nodeid), 2), item.nodeid.split("::", 1)[0] not in RAY_FIRST

    items.sort(key=key)


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Scopes as above: the session's Ray modules, the own-heads modules, every other module."""
    from xdist.scheduler import LoadScopeScheduling

    class RayScopeScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _scope(nodeid)

    return RayScopeScheduling(config, log)


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray for the whole test session (2 CPUs)."""
    import ray

    # Fake S3 credentials for the moto tests, set before Ray starts so that its worker processes
    # inherit them (pyarrow's S3FileSystem reads the standard AWS environment chain).
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
    ):
        os.environ.setdefault(name, value)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # No dashboard, as `sislab run` starts it (sislab.cluster.connect).
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


PLACEMENT_GROUP_DEADLINE_S = 60


def _live_placement_groups(ray) -> set[str]:
    """Placement groups of this driver's job that still hold resources."""
    job = ray.get_runtime_context().get_job_id()
    return {
        pg_id
        for pg_id, entry in ray.util.placement_group_table().items()
        if entry["state"] != "REMOVED" and pg_id.endswith(job)
    }


@pytest.fixture(autouse=True)
def _no_leaked_placement_groups(request: pytest.FixtureRequest):
    """A test on the shared cluster must hand back every placement group its sweeps made.

    ``sislab run`` ends its process and Ray frees what its job held; here the driver is this
    pytest process, which lives on, as a long sweep's driver does: a group left behind holds CPUs
    for the rest of the session and starves the next sweep (a chaos run waited forever on the
    groups of trials that ASHA had stopped earlier). Counted from the end of the previous test,
    so that a module-scoped sweep's groups are counted too.
    """
    yield
    if "ray_cluster" not in request.fixturenames:
        return
    from sislab.orchestrator.placement_groups import release_placement_group

    ray = request.getfixturevalue("ray_cluster")
    # A finished trial's group is removed asynchronously (by its Train controller, or by the
    # sweep's driver once the controller is dead), on this 2-core machine with both cores busy
    # in seconds. Wait for it, with a deadline.
    deadline = time.monotonic() + PLACEMENT_GROUP_DEADLINE_S
    while (leaked := _live_placement_groups(ray)) and time.monotonic() < deadline:
        time.sleep(0.2)
    table = ray.util.placement_group_table()
    left = {
        pg_id: {k: table[pg_id].get(k) for k in ("bundles", "strategy", "stats")}
        for pg_id in leaked
    }
    for pg_id in leaked:  # free them, so that one leak fails one test and not the session
        release_placement_group(pg_id)
    assert not leaked, f"placement groups left behind after {PLACEMENT_GROUP_DEADLINE_S} s: {left}"


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Also for a torch imported before this file set OMP_NUM_THREADS."""
    import torch

    torch.set_num_threads(1)
