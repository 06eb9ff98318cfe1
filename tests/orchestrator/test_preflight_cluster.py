"""The preflight against a running cluster: a sweep it refuses leaves no MLflow run RUNNING.

Apart from tests/orchestrator/test_preflight.py, whose checks need no Ray and so run beside the
session's sweeps rather than among them (tests/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sislab.errors import SpecError
from sislab.spec.loader import load_spec


def test_a_sweep_the_cluster_refuses_leaves_no_running_run(tmp_path: Path, ray_cluster) -> None:
    from mlflow import MlflowClient

    from sislab.orchestrator.run_dir import RunDir
    from sislab.orchestrator.sweep import run_sweep

    path = tmp_path / "spec.yaml"
    path.write_text("name: big\ntrain: {batch_size: 64}\nresources:\n  num_workers: 64\n")
    run_dir = RunDir.create(tmp_path, "big", tmp_path / "run")
    address = ray_cluster.get_runtime_context().gcs_address
    with pytest.raises(SpecError, match=r"spec.yaml:4: resources.num_workers: one trial needs"):
        run_sweep(load_spec(path), path, run_dir=run_dir, address=address)
    if run_dir.db_path.exists():  # the store may exist; no run in it may be left RUNNING
        client = MlflowClient(run_dir.default_tracking_uri)
        experiments = [e.experiment_id for e in client.search_experiments()]
        running = client.search_runs(experiments, "attributes.status = 'RUNNING'")
        assert running == []
