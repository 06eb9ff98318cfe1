"""A multi-node cluster needs a tracking server: node-local MLflow stores are refused."""

from __future__ import annotations

import logging

import pytest

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
