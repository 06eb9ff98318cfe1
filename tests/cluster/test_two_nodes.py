"""Two Ray nodes on this machine: `sislab run --address` trains one worker per node from s3://, keeps
checkpoints in S3 and logs to an MLflow server whose artifacts go to S3; `sislab submit` runs a sweep
through the Jobs API. The driver always runs in a subprocess, so this process's Ray is untouched.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sislab.datasets.storage import resolve
from sislab.datasets.synthetic import parse_synthetic_uri
from sislab.datasets.synthetic_writer import write_synthetic

from .two_node_lab import Lab, start_lab

pytestmark = pytest.mark.slow
RUN_TIMEOUT_S = 600
SYNTHETIC = "synthetic://shapes?size=32&classes=4&num=8&val=2"

SPEC = """\
name: {name}
method: spade
dataset: {{uri: {data}, endpoint_override: "{s3}", region: us-east-1, image_size: [32, 32]}}
model: {{ngf: 4, ndf: 4}}
train: {{epochs: 1, lr_decay_epochs: 0, batch_size: 2, max_iters_per_epoch: 2, log_every_iters: 1}}
eval: {{num_grid_samples: 1, metrics: []}}
resources: {{num_workers: {workers}, cpus_per_worker: 0.4, placement_strategy: {placement}}}
{tracking}storage: {{uri: "s3://runs/{name}", endpoint_override: "{s3}", region: us-east-1}}
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    """moto S3 with the dataset, an MLflow server, a head and a worker node; all stopped after."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    base = tmp_path_factory.mktemp("two-nodes")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    for bucket in ("data", "runs", "mlflow"):
        s3.create_bucket(Bucket=bucket)
    local = base / "synth"
    params = parse_synthetic_uri("synthetic://shapes?size=32&classes=4&num=8&val=2&seed=1")
    write_synthetic(resolve(str(local)), params, target_bytes=4000)
    for path in local.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), "data", f"synth/{path.relative_to(local).as_posix()}")
    try:
        running = start_lab(base, endpoint)
        try:
            yield running, s3, base
        finally:
            running.stop()
    finally:
        server.stop()


def _keys(s3, bucket: str, prefix: str = "") -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def _spec(
    lab: Lab,
    base: Path,
    name: str,
    *,
    workers: int,
    placement: str,
    tracked: bool,
    data: str = "s3://data/synth",
) -> Path:
    tracking = f'tracking: {{uri: "{lab.mlflow_uri}"}}\n' if tracked else ""
    path = base / f"{name}.yaml"
    path.write_text(
        SPEC.format(
            name=name,
            data=data,
            s3=lab.s3_endpoint,
            workers=workers,
            placement=placement,
            tracking=tracking,
        )
    )
    return path


def _sislab(lab: Lab, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sislab.cli.main", *argv], env=lab.env, capture_output=True,
        text=True, timeout=RUN_TIMEOUT_S,
    )  # fmt: skip


def test_run_spreads_workers_over_nodes_with_s3_checkpoints_and_mlflow_server(lab) -> None:
    lab, s3, base = lab
    spec = _spec(lab, base, "spread", workers=2, placement="STRICT_SPREAD", tracked=True)

    done = _sislab(
        lab, "run", str(spec), "--address", lab.ray_address, "--run-dir", str(base / "r1")
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    nodes = lab.train_worker_nodes()
    assert len(nodes) == 2 and len(set(nodes.values())) == 2, nodes  # one worker per node
    checkpoints = [k for k in _keys(s3, "runs", "spread/") if "/checkpoint_" in k]
    assert checkpoints, _keys(s3, "runs")
    client = MlflowClient(lab.mlflow_uri)
    experiment = client.get_experiment_by_name("spread")
    (trial,) = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`sislab.kind` = 'trial'"
    )
    assert trial.info.status == "FINISHED"
    assert client.get_metric_history(trial.info.run_id, "train/loss_g")
    artifacts = _keys(s3, "mlflow", "artifacts/")
    assert any(k.endswith(f"{trial.info.run_id}/artifacts/model_summary.json") for k in artifacts)
    assert any("/images/samples+step+" in k for k in artifacts), artifacts


def test_run_on_two_nodes_refuses_the_local_sqlite_store(lab) -> None:
    lab, _, base = lab
    spec = _spec(lab, base, "untracked", workers=1, placement="PACK", tracked=False)

    done = _sislab(
        lab, "run", str(spec), "--address", lab.ray_address, "--run-dir", str(base / "r2")
    )

    assert done.returncode == 2
    assert "the cluster has 2 nodes" in done.stderr and "sislab mlflow serve" in done.stderr


def test_submit_runs_a_sweep_through_the_jobs_api(
    lab, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    lab, _, base = lab
    if lab.dashboard_url is None:
        pytest.skip("the Jobs API needs the Ray dashboard: install ray[default]")
    from sislab.cli.main import main
    from sislab.cluster import jobs

    monkeypatch.setattr(jobs, "POLL_INTERVAL_S", 0.2)  # the status poll (2 s) is all waiting
    # Synthetic layouts: reading s3:// through Ray Data is the run test's; this one is about
    # the job (each trial's Ray Data start-up would only add to its time).
    spec = _spec(lab, base, "submitted", workers=1, placement="PACK", tracked=True, data=SYNTHETIC)
    # One trial: the sweep path through the Jobs API, not Tune's concurrency (tests/e2e).
    spec.write_text(spec.read_text() + "search: {space: {train.lr_g: {grid: [2.0e-4]}}}\n")

    # In this process: `sislab submit` only talks HTTP to the Jobs API (no Ray driver here).
    rc = main(["submit", str(spec), "--address", lab.dashboard_url])

    out = capsys.readouterr()
    assert rc == 0, out.out + out.err
    job_id = out.out.split("submitted job ")[1].split()[0]
    status = jobs.wait_for_job(lab.dashboard_url, job_id, timeout_s=RUN_TIMEOUT_S)
    assert status == "SUCCEEDED", jobs.job_logs(lab.dashboard_url, job_id)[-3000:]
    client = MlflowClient(lab.mlflow_uri)
    experiment = client.get_experiment_by_name("submitted")
    trials = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`sislab.kind` = 'trial'"
    )
    assert [t.data.params["train.lr_g"] for t in trials] == ["0.0002"]
    assert all(t.info.status == "FINISHED" for t in trials)
