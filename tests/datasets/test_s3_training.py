"""Training reads from s3:// on a moto server: 2 Train workers, disjoint, complete, every epoch;
``sislab bench data`` reads both of its sides from there."""

import json
from pathlib import Path

import pytest

from sislab.datasets.pipeline import build_ray_datasets, iter_epoch_batches
from sislab.datasets.storage import resolve
from sislab.datasets.synthetic import parse_synthetic_uri
from sislab.datasets.synthetic_writer import write_synthetic
from sislab.spec.models import DatasetSpec


@pytest.fixture
def s3_dataset(tmp_path):
    """The synthetic dataset uploaded with boto3 to a moto S3 server on 127.0.0.1."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    local = tmp_path / "local"
    params = parse_synthetic_uri("synthetic://shapes?size=16&classes=4&num=12&val=4&seed=3")
    write_synthetic(resolve(str(local)), params, target_bytes=3000)
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="datasets")
    for path in local.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), "datasets", f"synth/{path.relative_to(local).as_posix()}")
    yield DatasetSpec(uri="s3://datasets/synth", endpoint_override=endpoint, region="us-east-1")
    server.stop()


def _train_loop(config: dict) -> None:
    import ray.train

    shard = ray.train.get_dataset_shard("train")
    rank = ray.train.get_context().get_world_rank()
    seen = {}
    for epoch in range(2):
        batches = iter_epoch_batches(shard, epoch=epoch, batch_size=2, seed=0, drop_last=False)
        seen[epoch] = [k for b in batches for k in b["key"]]
    val = iter_epoch_batches(
        ray.train.get_dataset_shard("val"), epoch=0, batch_size=2, seed=0, shuffle_buffer=0,
        drop_last=False,
    )  # fmt: skip
    seen["val"] = [k for b in val for k in b["key"]]
    Path(config["out"], f"rank{rank}.json").write_text(json.dumps(seen))
    ray.train.report({"rows": len(seen[0])})


@pytest.mark.slow
def test_two_workers_see_disjoint_complete_epochs_from_s3(ray_cluster, s3_dataset, tmp_path):
    from ray.train import DataConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    datasets = build_ray_datasets(s3_dataset, (16, 16), seed=0)
    out = tmp_path / "keys"
    out.mkdir()
    trainer = TorchTrainer(
        _train_loop,
        train_loop_config={"out": str(out)},
        scaling_config=ScalingConfig(num_workers=2, resources_per_worker={"CPU": 0.5}),
        # As a trial's trainer (orchestrator/trial.py): train split among the workers, val whole.
        datasets=datasets,
        dataset_config=DataConfig(datasets_to_split=["train"]),
        run_config=RunConfig(storage_path=str(tmp_path / "ray"), name="s3-ingest"),
    )
    trainer.fit()
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    expected = sorted(f"{i:08d}" for i in range(12))
    for epoch in ("0", "1"):
        a, b = ranks[0][epoch], ranks[1][epoch]
        assert a and b and not set(a) & set(b)
        assert sorted(a + b) == expected  # every row exactly once
    # Every worker reads the whole val split (evaluation keeps its own share of it).
    assert (
        sorted(ranks[0]["val"]) == sorted(ranks[1]["val"]) == [f"{i:08d}" for i in (12, 13, 14, 15)]
    )


def test_bench_data_reads_both_sides_from_s3_and_removes_its_pngs(ray_cluster, s3_dataset):
    import boto3

    from sislab.datasets.bench import bench_data

    r = bench_data(
        s3_dataset.uri,
        16,
        rounds=1,
        epochs=1,
        batch_size=4,
        cache="on",
        endpoint_override=s3_dataset.endpoint_override,
    )
    assert r["rows"] == 12 and r["cached"] is True
    (only,) = r["rounds"]
    assert only["samples_per_epoch"] == {"ray_data": 12, "dataloader": 12}
    assert only["cold_ratio"] > 0 and only["steady_ratio"] > 0
    # The baseline's PNGs went to a prefix beside the dataset, and are gone again.
    s3 = boto3.client("s3", endpoint_url=s3_dataset.endpoint_override, region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="datasets").get("Contents", [])]
    assert keys and all(k.startswith("synth/") for k in keys)
