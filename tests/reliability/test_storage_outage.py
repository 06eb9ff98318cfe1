"""Object storage faults: the S3 (moto) server stops mid-epoch; shard reads retry with backoff and
go on when it returns, and past the retry budget the error names the shard's URI."""

from __future__ import annotations

import logging
import threading
import time

import pyarrow as pa
import pytest

from sislab.datasets.manifest import load_manifest
from sislab.datasets.pipeline import _ReadShards, read_shard_with_retries
from sislab.datasets.storage import StorageOptions, resolve
from sislab.datasets.synthetic import parse_synthetic_uri
from sislab.datasets.synthetic_writer import write_synthetic
from sislab.errors import DataError
from sislab.spec.models import DatasetSpec

OUTAGE_S = 3.0


@pytest.fixture
def s3(tmp_path, monkeypatch):
    """A moto S3 server holding a small sharded dataset; ``stop``/``start`` keep port and data."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    local = tmp_path / "local"
    params = parse_synthetic_uri("synthetic://shapes?size=16&classes=4&num=12&val=4&seed=3")
    write_synthetic(resolve(str(local)), params, target_bytes=3000)
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="datasets")
    for path in local.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), "datasets", f"synth/{path.relative_to(local).as_posix()}")
    spec = DatasetSpec(uri="s3://datasets/synth", endpoint_override=endpoint, region="us-east-1")
    location = resolve(spec.uri, StorageOptions(spec.endpoint_override, spec.region))
    state = {"server": server}

    def restart() -> None:
        state["server"] = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
        state["server"].start()  # moto's backend is per process: the bucket is still there

    yield location, load_manifest(location), server, restart
    state["server"].stop()


def test_reads_retry_through_an_outage_and_the_epoch_completes(s3, caplog) -> None:
    location, manifest, server, restart = s3
    shards = manifest.splits["train"].shards
    assert len(shards) >= 2
    udf = _ReadShards(
        location,
        {s.path: (s.sha256, s.rows) for s in shards},
        skip=False,
        retries=6,
        backoff_s=0.25,
    )
    first = udf(pa.table({"shard": [shards[0].path]}))  # the epoch starts normally
    server.stop()  # ... then the store goes away for a few seconds
    stopped = time.monotonic()
    timer = threading.Timer(OUTAGE_S, restart)
    timer.start()
    with caplog.at_level(logging.WARNING, logger="sislab.datasets.pipeline"):
        rest = udf(pa.table({"shard": [s.path for s in shards[1:]]}))
    recovered = time.monotonic() - stopped
    timer.join()
    retries = [r for r in caplog.records if "retry" in r.getMessage()]
    # Every row of the split arrived, none twice; the reads waited for the store, then went on.
    keys = first.column("key").to_pylist() + rest.column("key").to_pylist()
    assert len(keys) == len(set(keys)) == manifest.splits["train"].rows
    assert all(e == "" for e in rest.column("error").to_pylist())
    assert retries, "the outage caused no retry"
    assert "s3://datasets/synth/train/part-00001.parquet" in retries[0].getMessage()
    assert OUTAGE_S <= recovered < OUTAGE_S + 30
    print(f"outage {OUTAGE_S:.0f}s: {len(retries)} retries, reads resumed after {recovered:.1f}s")


def test_past_the_retry_budget_the_error_names_the_uri(s3) -> None:
    location, manifest, server, _ = s3
    shard = manifest.splits["train"].shards[0]
    server.stop()
    begin = time.monotonic()
    with pytest.raises(DataError, match="gave up after 3 attempts") as err:
        read_shard_with_retries(location, shard, retries=2, backoff_s=0.1)
    assert "s3://datasets/synth/train/part-00000.parquet" in err.value.message
    assert "dataset.read_retries" in err.value.fix
    print(f"gave up after {time.monotonic() - begin:.1f}s")


def test_corrupt_shards_are_not_retried(s3, caplog) -> None:
    location, manifest, _, _ = s3
    shard = manifest.splits["train"].shards[0].model_copy(update={"sha256": "0" * 64})
    with caplog.at_level(logging.WARNING), pytest.raises(DataError, match="is corrupt: sha256"):
        read_shard_with_retries(location, shard, retries=5, backoff_s=5.0)
    assert not [r for r in caplog.records if "retry" in r.getMessage()]
    missing = shard.model_copy(update={"path": "train/part-09999.parquet"})
    with pytest.raises(DataError, match="cannot read shard s3://datasets/synth/train/part-09999"):
        read_shard_with_retries(location, missing, retries=5, backoff_s=5.0)


def test_spec_fields_default_to_a_bounded_budget() -> None:
    spec = DatasetSpec()
    assert (spec.read_retries, spec.retry_backoff_s) == (4, 1.0)


def test_sweep_storage_keeps_its_retries_when_ray_pickles_it() -> None:
    import pickle

    from sislab.datasets.storage import RetryingS3FileSystem, StorageOptions, s3_filesystem

    fs = s3_filesystem(StorageOptions("http://127.0.0.1:9", "us-east-1"), max_attempts=8)
    # pyarrow's own S3FileSystem pickles without its retry strategy (3 tries in every copy).
    copy = pickle.loads(pickle.dumps(fs))
    assert isinstance(copy, RetryingS3FileSystem) and copy.max_attempts == 8
    assert copy.options == {
        "endpoint_override": "127.0.0.1:9",
        "scheme": "http",
        "region": "us-east-1",
    }
