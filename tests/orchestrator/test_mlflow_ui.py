"""The URL of a sweep's runs table and the shared view that presets its columns."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from mlflow.tracking import MlflowClient

from sislab.orchestrator.mlflow_store import prepare_sqlite_store
from sislab.orchestrator.mlflow_ui import base_url, preset_runs_view, runs_table_url


def test_url_opens_the_runs_table_on_the_real_host_and_port() -> None:
    assert base_url("127.0.0.1", 5001) == "http://127.0.0.1:5001"
    assert base_url("0.0.0.0", 8080) == f"http://{socket.gethostname()}:8080"
    assert base_url("::1", 80) == "http://[::1]:80"
    assert runs_table_url("http://h:5001/", "7") == (
        "http://h:5001/#/experiments/7/runs?workflowType=machine_learning"
    )
    assert runs_table_url("http://h:5001", "7", "sislab-abc").endswith(
        "runs?workflowType=machine_learning&viewStateShareKey=sislab-abc"
    )


def test_shared_view_ticks_varied_params_and_sweep_metric(tmp_path: Path) -> None:
    prepare_sqlite_store(tmp_path / "mlflow.db")
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("e", artifact_location=tmp_path.as_uri())
    key = preset_runs_view(client, experiment, "0123456789abcdef", ["method", "train.lr_g"],
                           ["eval/fid"])  # fmt: skip
    assert key == "sislab-0123456789ab"
    view = json.loads(client.get_experiment(experiment).tags[f"mlflow.sharedViewState.{key}"])
    # The UI's column ids; no sort key, so the trials stay nested under the sweep's run.
    assert view == {
        "selectedColumns": ["params.`method`", "params.`train.lr_g`", "metrics.`eval/fid`"]
    }
