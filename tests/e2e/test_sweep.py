"""End to end on the session's Ray: spec -> Tune sweep of Train trials -> MLflow runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from PIL import Image
from rich.console import Console

from sislab.orchestrator.run_dir import RunDir
from sislab.orchestrator.sweep import run_sweep
from sislab.spec.loader import load_spec

pytestmark = pytest.mark.e2e

SPEC = """\
name: e2e-sweep
method: spade
dataset:
  uri: synthetic://shapes?size=64&classes=4&num=8&val=2
  image_size: [64, 64]
model: {ngf: 8, ndf: 8}
train:
  epochs: 2
  lr_decay_epochs: 1
  batch_size: 2
  max_iters_per_epoch: 1
  log_every_iters: 1
eval: {num_grid_samples: 2}
resources: {num_workers: 2, cpus_per_worker: 0.4}
search:
  space:
    train.lr_g: {grid: [1.0e-4, 3.0e-4]}
"""

LOSSES = (
    "train/loss_g",
    "train/loss_d",
    "train/g_gan",
    "train/g_feat",
    "train/d_real",
    "train/d_fake",
)


def test_sweep_records_nested_runs(ray_cluster, tmp_path: Path) -> None:
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(SPEC)
    spec = load_spec(spec_path)
    run_dir = RunDir.create(tmp_path, spec.name, tmp_path / "run")

    outcome = run_sweep(spec, spec_path, run_dir=run_dir, console=Console(quiet=True))

    assert outcome.num_trials == 2 and outcome.num_errors == 0
    state = run_dir.load_state()
    assert state.status == "FINISHED"
    client = MlflowClient(state.tracking_uri)
    parent = client.get_run(state.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert "spec.yaml" in [a.path for a in client.list_artifacts(parent.info.run_id)]
    children = client.search_runs(
        [state.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert len(children) == 2
    assert {c.data.params["train.lr_g"] for c in children} == {"0.0001", "0.0003"}
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.params["method"] == "spade"
        assert child.data.params["model.ngf"] == "8"
        for loss in LOSSES:
            history = client.get_metric_history(child.info.run_id, loss)
            assert len(history) >= 2, loss
        assert "off" in child.data.tags["sislab.perceptual_loss"]  # no VGG19 weights in tests
        grids = client.list_artifacts(child.info.run_id, "samples")
        assert grids, "no sample grid"
        local = client.download_artifacts(child.info.run_id, grids[-1].path, str(tmp_path))
        with Image.open(local) as grid:
            assert grid.size == (3 * 64, 2 * 64)  # label | generated | real, 2 rows
        summary = client.get_metric_history(child.info.run_id, "model/generator_params")
        assert summary and summary[0].value > 0
