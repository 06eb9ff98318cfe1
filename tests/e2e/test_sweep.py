"""End to end on the session's Ray: spec -> Tune sweep of Train trials -> MLflow runs.

The dataset is a folder of Parquet shards with one corrupt row, streamed through Ray Data with
``on_corrupt: skip``: one sweep covers the MLflow records of issue 3 and the streaming of issue 4.
A third trial reads the same data with ``on_corrupt: error`` and fails at run time (issue 19): its
error's own line reaches the console table, its run's tags, description and ``error.txt``.
"""

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

SIZE = 64
FAILING_LR = 5.0e-4
LOSSES = (
    "train/loss_g",
    "train/loss_d",
    "train/g_gan",
    "train/g_feat",
    "train/d_real",
    "train/d_fake",
)


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _rows(rng: np.random.Generator, prefix: str, count: int, corrupt: int | None = None) -> list:
    rows = []
    for i in range(count):
        image = _png(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
        if i == corrupt:
            image = image[:40]  # a truncated PNG
        label = _png(rng.integers(0, 3, (SIZE, SIZE), dtype=np.uint8))
        rows.append(Row(f"{prefix}{i}", image, label, None, SIZE, SIZE))
    return rows


def _write_dataset(root: Path) -> None:
    """8 train rows in 2 shards (row 2 of shard 0 truncated), 2 val rows."""
    rng = np.random.default_rng(0)
    location = resolve(str(root))
    shards = [
        write_shard(location, "train", s, _rows(rng, f"k{s}", 4, corrupt=2 if s == 0 else None))
        for s in range(2)
    ]
    val = write_shard(location, "val", 0, _rows(rng, "v", 2))
    classes = [ClassInfo(id=i, name=f"c{i}", colour=voc_colour(i)) for i in range(3)]
    splits = {"train": SplitInfo(shards=shards), "val": SplitInfo(shards=[val])}
    save_manifest(location, Manifest(name="tiny", classes=classes, splits=splits))


def test_sweep_records_nested_runs(ray_cluster, tmp_path: Path) -> None:
    data = tmp_path / "data"
    _write_dataset(data)
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(
        f"""\
name: e2e-sweep
method: spade
dataset: {{uri: "{data}", image_size: [{SIZE}, {SIZE}], preprocess: fixed, on_corrupt: skip,
          read_cpus: 0.1}}
model: {{ngf: 8, ndf: 8}}
train: {{epochs: 2, lr_decay_epochs: 1, batch_size: 2, log_every_iters: 1}}
eval: {{num_grid_samples: 2, metrics: [fid, kid, lpips], allow_substitute_weights: true,
       every_epochs: 2}}
resources: {{num_workers: 2, cpus_per_worker: 0.4}}
search:
  space:
    train.lr_g: {{grid: [1.0e-4, 3.0e-4, {FAILING_LR}]}}
    # The third trial fails on the corrupt row, once (no restart of its workers).
    dataset.on_corrupt: {{grid: [error], when: {{train.lr_g: {FAILING_LR}}}}}
    train.max_failures: {{grid: [0], when: {{train.lr_g: {FAILING_LR}}}}}
"""
    )
    spec = load_spec(spec_path)
    run_dir = RunDir.create(tmp_path, spec.name, tmp_path / "run")
    console = Console(file=io.StringIO(), width=4000)

    outcome = run_sweep(spec, spec_path, run_dir=run_dir, console=console)

    assert outcome.num_trials == 3 and outcome.num_errors == 1
    state = run_dir.load_state()
    assert state.status == "FINISHED"
    client = MlflowClient(state.tracking_uri)
    parent = client.get_run(state.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert "spec.yaml" in [a.path for a in client.list_artifacts(parent.info.run_id)]
    children = client.search_runs(
        [state.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert len(children) == 3
    # The failed trial: the error's own line in the live view, its run's tag and description,
    # the whole traceback as error.txt, the run FAILED.
    (failed,) = [c for c in children if c.data.params["train.lr_g"] == str(FAILING_LR)]
    line = failed.data.tags["sislab.error"]
    assert line.startswith("DataError: corrupt sample in shard train/part-00000.parquet row"), line
    assert failed.info.status == "FAILED"
    assert line in failed.data.tags["mlflow.note.content"]
    assert f"failed: {line}" in console.file.getvalue()
    error_txt = client.download_artifacts(failed.info.run_id, "error.txt", str(tmp_path))
    traceback = Path(error_txt).read_text()  # Ray's format: frames, no "Traceback" header
    assert 'File "' in traceback and "sislab.errors.DataError: corrupt sample" in traceback
    children = [c for c in children if c is not failed]
    assert {c.data.params["train.lr_g"] for c in children} == {"0.0001", "0.0003"}
    for child in children:
        run_id = child.info.run_id
        assert child.info.status == "FINISHED"
        assert child.data.params["method"] == "spade"
        assert child.data.params["model.ngf"] == "8"
        for loss in LOSSES:
            assert len(client.get_metric_history(run_id, loss)) >= 2, loss
        assert "off" in child.data.tags["sislab.perceptual_loss"]  # no VGG19 weights in tests
        grids = client.list_artifacts(run_id, "samples")
        assert len(grids) == 1  # one per evaluation (after the last epoch)
        local = client.download_artifacts(run_id, grids[-1].path, str(tmp_path))
        with Image.open(local) as grid:
            assert grid.size == (3 * SIZE, 2 * SIZE)  # label | generated | real, 2 rows
        assert client.get_metric_history(run_id, "model/generator_params")[0].value > 0
        # Both val rows, generated by the two ranks and gathered on rank 0, evaluated after the
        # last epoch (FID's sqrtm is ~30 s on a test CPU; the loop tests evaluate every epoch);
        # LPIPS ran on a random AlexNet (none here) and the run says so.
        for metric in ("eval/fid", "eval/kid", "eval/lpips"):
            history = client.get_metric_history(run_id, metric)
            assert [m.step for m in history] == [8], metric  # 4 iterations per epoch
        assert child.data.tags["sislab.protocol.num_generated"] == "2"
        assert child.data.tags["sislab.metrics.substitute_weights"] == "alexnet"
        best = child.data.tags["sislab.best_checkpoint_uri"]
        assert best.endswith("best_checkpoint") and (Path(best) / "meta.json").is_file()
        fids = [m.value for m in client.get_metric_history(run_id, "eval/fid")]
        assert child.data.metrics["best/fid"] == pytest.approx(min(fids))
        # The truncated row was skipped in each epoch, counted over both ranks, and logged.
        assert [m.value for m in client.get_metric_history(run_id, "data/skipped_rows")] == [
            1.0,
            1.0,
        ]
