"""PBT on the session's Ray: examples/spade_pbt.yaml, a real (tiny) SPADE sweep whose worse trial
clones the better one, with the sweep's storage on S3 (moto on 127.0.0.1), as on a cluster.

Synchronous PBT with two trials and ``quantile_fraction: 0.5`` exploits exactly once per
interval: at epoch 1 the bottom trial takes the top trial's checkpoint and a perturbed learning
rate, and trains its last epoch in a new Train run started from that checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient
from pyarrow import fs as pafs
from rich.console import Console

from sislab.datasets.storage import StorageOptions, s3_filesystem
from sislab.orchestrator.run_dir import RunDir
from sislab.orchestrator.sweep import run_sweep
from sislab.spec.loader import load_spec
from sislab.trainers.checkpoint import read_meta

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "spade_pbt.yaml"


@pytest.fixture
def bucket():
    """A bucket on a moto S3 server on 127.0.0.1: its endpoint."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
        Bucket="sweeps"
    )
    yield endpoint
    server.stop()


def test_pbt_exploits_with_checkpoint_transfer(ray_cluster, bucket: str, tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    storage_yaml = f"storage: {{uri: s3://sweeps/pbt, endpoint_override: {bucket}}}\n"
    path.write_text(EXAMPLE.read_text() + storage_yaml)
    spec = load_spec(path)
    s3 = s3_filesystem(StorageOptions(bucket, "us-east-1"))

    def fetch(folder: str) -> Path:
        local = tmp_path / "fetched" / folder.rsplit("/", 1)[-1]
        local.mkdir(parents=True)
        pafs.copy_files(folder, str(local), source_filesystem=s3)
        return local

    run_dir = RunDir.create(tmp_path, spec.name, tmp_path / "run")
    outcome = run_sweep(spec, path, run_dir=run_dir, console=Console(quiet=True))
    assert outcome.num_trials == 2 and outcome.num_errors == 0

    client = MlflowClient(outcome.state.tracking_uri)
    runs = client.search_runs(
        [outcome.state.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{outcome.state.parent_run_id}'",
    )
    assert len(runs) == 2  # one MLflow run per trial, the exploit included
    assert {r.info.status for r in runs} == {"FINISHED"}
    by_trial = {r.data.tags["sislab.trial_id"]: r for r in runs}
    # Each run's metric history holds each step once, from the first to the last: the epoch a
    # trial started before PBT paused it or cloned the donor into it was never logged (its
    # workers waited for Tune's decision), and the recipient's history continues from the
    # donor's iteration.
    for run in runs:
        for key in ("train/loss_g", "train/loss_d", "lr/g"):
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert len(steps) == len(set(steps)), (key, steps)
            if key != "lr/g":  # learning rates are logged when they change
                assert sorted(steps) == [1, 2], (key, steps)
    exploited = [r for r in runs if "sislab.pbt.exploit.e0001" in r.data.tags]
    assert len(exploited) == 1  # two trials, quantile 0.5: exactly one clones the other
    recipient = exploited[0]
    record = json.loads(recipient.data.tags["sislab.pbt.exploit.e0001"])
    donor_id = record["donor_trial"]
    assert donor_id != recipient.data.tags["sislab.trial_id"] and donor_id in by_trial
    storage = outcome.state.storage_path
    assert storage == "sweeps/pbt"
    assert record["donor_checkpoint"].rsplit("/", 1)[0] == f"{storage}/train-{donor_id}"
    donor_checkpoint = fetch(record["donor_checkpoint"])
    assert read_meta(donor_checkpoint).epoch == 1

    # Explore: the donor's learning rate times 1.2 or 0.8, inside the mutation range.
    donor_lr = float(by_trial[donor_id].data.params["train.lr_g"])
    rid = recipient.info.run_id
    history = {m.step: m.value for m in client.get_metric_history(rid, "pbt/train.lr_g")}
    assert history[0] == pytest.approx(float(recipient.data.params["train.lr_g"]))
    new_lr = history[1]  # logged at the donor's iteration (1)
    assert new_lr == pytest.approx(donor_lr * 1.2) or new_lr == pytest.approx(donor_lr * 0.8)
    assert record["hyperparameters"]["train.lr_g"] == pytest.approx(new_lr)
    feat = {m.step: m.value for m in client.get_metric_history(rid, "pbt/losses.feat_match")}
    assert 1.0 <= feat[1] <= 20.0
    # The optimiser trained on with the new rate, from the donor's epoch.
    lr_g = [(m.step, m.value) for m in client.get_metric_history(rid, "lr/g")]
    assert lr_g[-1][0] == 2 and lr_g[-1][1] == pytest.approx(new_lr)
    resumed = client.get_metric_history(rid, "train/resumed_from_epoch")
    assert [m.value for m in resumed] == [1.0]

    # The recipient's new Train run: its checkpoint continues the donor's weights.
    recipient_id = recipient.data.tags["sislab.trial_id"]
    runs_dir = pafs.FileSelector(f"{storage}/train-{recipient_id}-from-{donor_id}-e1")
    checkpoints = [
        info.path
        for info in s3.get_file_info(runs_dir)
        if info.type == pafs.FileType.Directory and info.base_name.startswith("checkpoint_")
    ]
    final = fetch(sorted(checkpoints)[-1])
    meta = read_meta(final)
    assert (meta.epoch, meta.iteration) == (2, 2)
    donor_state = torch.load(donor_checkpoint / "state.pt", weights_only=True)
    recipient_state = torch.load(final / "state.pt", weights_only=True)
    # One step of Adam moves every trained tensor by at most ~lr: the recipient's final weights
    # continue the donor's checkpoint.
    checked = 0
    for name, tensor in donor_state["procedure"]["generator"].items():
        if not name.endswith(("weight", "bias", "weight_orig")):
            continue  # BatchNorm statistics and spectral-norm vectors move otherwise
        after = recipient_state["procedure"]["generator"][name]
        assert (after - tensor).abs().max() <= 10 * new_lr + 1e-6, name
        checked += 1
    assert checked > 10  # every conv and norm weight of the generator

    # The parent run's record of what trained each trial's final weights.
    local = client.download_artifacts(
        outcome.state.parent_run_id, "pbt_schedules.json", str(tmp_path)
    )
    schedules = json.loads(Path(local).read_text())["trials"]
    segments = [(s["from_epoch"], s["trial"]) for s in schedules[recipient_id]["schedule"]]
    assert segments == [(0, donor_id), (1, recipient_id)]
    assert schedules[recipient_id]["schedule"][1]["hyperparameters"]["train.lr_g"] == new_lr
    assert [s["trial"] for s in schedules[donor_id]["schedule"]] == [donor_id]
