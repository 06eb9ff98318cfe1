"""``sislab compare`` over 2,000 synthetic MLflow runs (logged with log_batch, no training)."""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from sislab.cli import compare as compare_cli
from sislab.orchestrator.compare import compare, load_runs, render
from sislab.orchestrator.mlflow_store import prepare_sqlite_store
from sislab.trainers.mlflow_tracker import KIND_TAG, PARENT_TAG, TRIAL_TAG

pytestmark = pytest.mark.slow  # writing 2,000 runs to sqlite takes 45-150 s here

NUM_RUNS = 2000
LRS = [1e-4, 2e-4, 4e-4, 8e-4]
OPS = ["conv_bn", "conv_scn", "scc_bn", "scc_scn", "none"]  # 4 x 5 = 20 groups x 100 seeds


def _loss(lr: float, ops: str, seed: int) -> float:
    return 1.0 + OPS.index(ops) * 0.1 + lr * 100 + (seed % 7) * 0.001


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Iterator[tuple[str, str, str]]:
    # sqlite's fsyncs dominate writing 2,000 runs: a RAM disk when there is one (4x faster).
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() else tmp_path_factory.mktemp("c")
    db = folder / "mlflow.db"
    prepare_sqlite_store(db)
    uri = f"sqlite:///{db}"
    client = MlflowClient(uri)
    exp = client.create_experiment("synthetic", artifact_location=(folder / "art").as_uri())
    parent = client.create_run(exp, run_name="synthetic (sweep)", tags={KIND_TAG: "sweep"})
    rng = random.Random(0)
    now = int(time.time() * 1000)
    for i in range(NUM_RUNS):
        lr, ops, seed = LRS[i % 4], OPS[(i // 4) % 5], i // 20
        run = client.create_run(
            exp,
            tags={PARENT_TAG: parent.info.run_id, TRIAL_TAG: f"t{i:05d}", KIND_TAG: "trial"},
        )
        loss = _loss(lr, ops, seed)
        client.log_batch(
            run.info.run_id,
            metrics=[
                Metric("train/loss_g", loss + 0.5, now, 1),
                Metric("train/loss_g", loss, now, 2),
                Metric("model/generator_params", 1e6 * (1 + OPS.index(ops)) + rng.random(), now, 0),
            ],
            params=[
                Param("train.lr_g", str(lr)),
                Param("model.ops", ops),
                Param("train.seed", str(seed)),
                Param("method", "scgan"),
            ],
        )
    yield uri, exp, parent.info.run_id
    shutil.rmtree(folder, ignore_errors=True)


def test_compare_groups_repeats_mean_std(store):
    uri, exp, _ = store
    started = time.perf_counter()
    runs = load_runs(MlflowClient(uri), exp)
    result = compare(runs, "train/loss_g", "min")
    elapsed = time.perf_counter() - started
    print(f"compare table over {len(runs)} runs: {elapsed:.2f}s")
    assert len(runs) == NUM_RUNS  # the sweep's parent run is not a trial
    assert set(result.group_by) == {"train.lr_g", "model.ops"}  # the seed is a repeat
    assert len(result.table) == 20
    assert (result.table["count"] == 100).all()
    best = result.table.iloc[0]
    assert (best["train.lr_g"], best["model.ops"]) == ("0.0001", "conv_bn")
    assert best["mean"] == pytest.approx(1.01 + 3 * 0.001, abs=1e-3)
    assert best["std"] > 0
    by_ops = compare(runs, "train/loss_g", "min", ["model.ops"])
    assert list(by_ops.table["model.ops"]) == OPS
    assert "| model.ops |" in render(by_ops, "md")
    assert render(by_ops, "csv").splitlines()[0].startswith("model.ops,count,mean,std")
    assert "<table" in render(by_ops, "html")


def test_compare_cli_plots_logged_to_parent(store, tmp_path: Path, capsys):
    uri, _, parent = store
    parser = argparse.ArgumentParser()
    compare_cli.register(parser.add_subparsers(dest="command"))
    plots = Path("/tmp/sislab-compare-plots")  # kept for a look after the test
    args = parser.parse_args(
        ["compare", "synthetic", "--tracking-uri", uri, "--group-by", "model.ops",
         "--metric", "train/loss_g", "--metric", "model/generator_params", "--format", "md",
         "--plots", str(plots), "--top-k", "3"]
    )  # fmt: skip
    assert args.handler(args) == 0
    out = capsys.readouterr()
    assert out.out.count("\n") == 2 + len(OPS)
    for name in ("metric_vs_model.ops.png", "pareto.png", "curves.png"):
        assert (plots / name).stat().st_size > 1000
    logged = {a.path for a in MlflowClient(uri).list_artifacts(parent, "compare")}
    assert logged == {"compare/metric_vs_model.ops.png", "compare/pareto.png", "compare/curves.png"}


def test_unknown_metric_names_known_ones(store):
    from sislab.errors import SpecError

    uri, exp, _ = store
    runs = load_runs(MlflowClient(uri), exp)
    with pytest.raises(SpecError, match="train/loss_g"):
        compare(runs, "fid")
