"""``sislab mlflow serve``: the server command proxies artifacts and keeps passwords off argv."""

from __future__ import annotations

import pytest

from sislab.cluster.mlflow_server import endpoint_note, serve_command
from sislab.errors import ClusterError


def test_serve_command_proxies_artifacts_to_s3() -> None:
    command = serve_command(
        "sqlite:////tmp/m.db", "s3://bucket/mlflow", "0.0.0.0", 5001, allowed_hosts="mlflow.lab"
    )
    assert command[1:4] == ["-m", "mlflow", "server"]
    joined = " ".join(command)
    assert "--serve-artifacts" in command
    assert "--artifacts-destination s3://bucket/mlflow" in joined
    assert "--host 0.0.0.0 --port 5001" in joined
    assert "--allowed-hosts mlflow.lab" in joined


def test_serve_command_refuses_password_in_store_uri_and_bad_destination() -> None:
    with pytest.raises(ClusterError, match="holds a password"):
        serve_command("postgresql://u:hunter2@db/mlflow", "s3://b/m")
    with pytest.raises(ClusterError, match="not a URI"):
        serve_command("sqlite:///m.db", "bucket/m")


def test_endpoint_note_names_the_endpoint_variable() -> None:
    note = endpoint_note("s3://b/m", {"MLFLOW_S3_ENDPOINT_URL": "http://minio:9000"})
    assert "http://minio:9000" in note
    assert "set MLFLOW_S3_ENDPOINT_URL" in endpoint_note("s3://b/m", {})
