"""A sweep on a Parquet-shard dataset with a corrupt row: skipped, counted and logged to MLflow."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image
from rich.console import Console

from sislab.datasets.classes import voc_colour
from sislab.datasets.manifest import ClassInfo, Manifest, SplitInfo, save_manifest
from sislab.datasets.shards import Row, write_shard
from sislab.datasets.storage import resolve
from sislab.orchestrator.run_dir import RunDir
from sislab.orchestrator.sweep import run_sweep
from sislab.spec.loader import load_spec

pytestmark = pytest.mark.e2e


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_dataset(root: Path) -> None:
    """8 train rows in 2 shards (row 2 of shard 0 truncated), 2 val rows."""
    rng = np.random.default_rng(0)
    location = resolve(str(root))
    shards = []
    for s in range(2):
        rows = []
        for i in range(4):
            image = _png(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
            if (s, i) == (0, 2):
                image = image[:40]
            label = _png(rng.integers(0, 3, (32, 32), dtype=np.uint8))
            rows.append(Row(f"k{s}{i}", image, label, None, 32, 32))
        shards.append(write_shard(location, "train", s, rows))
    val = [Row(f"v{i}", _png(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)),
               _png(rng.integers(0, 3, (32, 32), dtype=np.uint8)), None, 32, 32) for i in range(2)]  # fmt: skip
    val_shard = write_shard(location, "val", 0, val)
    classes = [ClassInfo(id=i, name=f"c{i}", colour=voc_colour(i)) for i in range(3)]
    splits = {"train": SplitInfo(shards=shards), "val": SplitInfo(shards=[val_shard])}
    save_manifest(location, Manifest(name="tiny", classes=classes, splits=splits))


def test_sweep_on_shards_skips_and_logs_corrupt_rows(ray_cluster, tmp_path: Path) -> None:
    data = tmp_path / "data"
    _write_dataset(data)
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(
        f"""\
name: e2e-shards
method: spade
dataset: {{uri: "{data}", image_size: [32, 32], preprocess: fixed, on_corrupt: skip}}
model: {{ngf: 4, ndf: 4}}
train: {{epochs: 1, lr_decay_epochs: 0, batch_size: 2, log_every_iters: 1}}
eval: {{num_grid_samples: 2}}
resources: {{num_workers: 2, cpus_per_worker: 0.4}}
"""
    )
    spec = load_spec(spec_path)
    run_dir = RunDir.create(tmp_path, spec.name, tmp_path / "run")

    outcome = run_sweep(spec, spec_path, run_dir=run_dir, console=Console(quiet=True))

    assert outcome.num_errors == 0
    state = run_dir.load_state()
    client = MlflowClient(state.tracking_uri)
    (child,) = client.search_runs(
        [state.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{state.parent_run_id}'"
    )
    skipped = client.get_metric_history(child.info.run_id, "data/skipped_rows")
    assert [m.value for m in skipped] == [1.0]
    # 8 rows // 2 workers // batch 1 = 4 steps on both ranks: the rank that lost a row refilled it.
    assert len(client.get_metric_history(child.info.run_id, "train/loss_g")) == 4
    assert client.list_artifacts(child.info.run_id, "samples")
