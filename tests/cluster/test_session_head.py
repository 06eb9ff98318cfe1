"""The session's Ray head passes the reachability check, by its address and by the loopback.

Apart from tests/cluster/test_connect.py, which starts Ray heads of its own (tests/conftest.py
schedules such modules beside the session's sweeps, not among them).
"""

from __future__ import annotations

from sislab.cluster.address import check_reachable, find_cluster


def test_the_session_head_passes_the_check(ray_cluster) -> None:
    gcs = ray_cluster.get_runtime_context().gcs_address
    check_reachable(find_cluster(gcs))
    # What a user types on the head itself: Ray maps the loopback address to the node's IP.
    check_reachable(find_cluster(f"127.0.0.1:{gcs.rsplit(':', 1)[1]}"))
