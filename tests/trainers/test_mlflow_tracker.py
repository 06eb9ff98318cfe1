"""The tracker's queue on a real sqlite store: images with steps, artifacts replaced while queued,
params, and a trial run's name, params, infrastructure artifact and source tags."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch
from mlflow.tracking import MlflowClient

from sislab.orchestrator.mlflow_store import prepare_sqlite_store
from sislab.spec.loader import spec_from_dict
from sislab.trainers.mlflow_tracker import SPOOL_PREFIX, UNSENT_PREFIX, MlflowTracker
from sislab.trainers.sample_grid import write_grid
from sislab.trainers.trial_inputs import log_dataset_input, manifest_digest
from sislab.trainers.trial_run import open_trial_run


def _client(tmp_path: Path) -> tuple[MlflowClient, str]:
    prepare_sqlite_store(tmp_path / "mlflow.db")
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    return client, client.create_experiment("t", artifact_location=str(tmp_path / "artifacts"))


def test_trial_run_records(tmp_path: Path) -> None:
    client, experiment = _client(tmp_path)
    spec = spec_from_dict(
        {"name": "s", "method": "spade", "train": {"lr_g": 2e-4},
         "search": {"space": {"train.lr_g": {"grid": [1e-4, 2e-4]}}}}
    )  # fmt: skip
    parent = client.create_run(experiment).info.run_id
    notes = {"sislab.perceptual_loss": "off: no vgg19 weights"}
    data = spec.model_dump(mode="json")
    run_id = open_trial_run(client, experiment, parent, "t1", data, {"train.lr_g": 2e-4}, notes)
    # Found again (not created twice) after a restart.
    assert open_trial_run(client, experiment, parent, "t1", data, {"train.lr_g": 2e-4}) == run_id
    log_dataset_input(client, run_id, spec.dataset)
    run = client.get_run(run_id)
    assert run.info.run_name == "lr_g=2e-4 · t1"
    assert run.data.params["losses.perceptual"] == "0" and "storage.uri" not in run.data.params
    assert run.data.tags["mlflow.source.type"] == "JOB"
    assert "`losses.perceptual` logged as 0" in run.data.tags["mlflow.note.content"]
    local = client.download_artifacts(run_id, "config/infrastructure.json", str(tmp_path))
    assert json.loads(Path(local).read_text())["train.log_every_iters"] == 10
    (dataset,) = [d.dataset for d in run.inputs.dataset_inputs]
    assert (dataset.name, dataset.digest) == (
        "synthetic-shapes",
        manifest_digest([spec.dataset.uri]),
    )


def test_images_params_and_replaced_artifacts(tmp_path: Path) -> None:
    client, experiment = _client(tmp_path)
    run_id = client.create_run(experiment).info.run_id
    tracker = MlflowTracker(client, run_id, flush_every_s=60)
    label = torch.zeros(1, 1, 32, 32, dtype=torch.long)
    image = torch.zeros(1, 3, 32, 32)
    for step in (4, 8):
        tracker.log_image(write_grid(tmp_path / "g.png", label, image, image, 2), "samples", step)
    for content in ("old", "new"):  # the last queued file is the one the run keeps
        (tmp_path / "generator.pt").write_text(content)
        tracker.log_artifact(tmp_path / "generator.pt", "best_generator")
    tracker.log_params({"summary.generator_params": "123"})
    assert tracker.close()
    pngs = [a.path for a in client.list_artifacts(run_id, "images") if a.path.endswith(".png")]
    steps = sorted(int(p.split("+step+")[1].split("+")[0]) for p in pngs)
    assert steps == [4, 8] and all(p.startswith("images/samples+step+") for p in pngs)
    local = client.download_artifacts(run_id, "best_generator/generator.pt", str(tmp_path / "d"))
    assert Path(local).read_text() == "new"
    assert client.get_run(run_id).data.params["summary.generator_params"] == "123"


def test_each_step_is_logged_once_and_held_metrics_wait_for_flush(tmp_path: Path) -> None:
    from sislab.trainers.mlflow_tracker import logged_steps

    client, experiment = _client(tmp_path)
    run_id = client.create_run(experiment).info.run_id
    first = MlflowTracker(client, run_id, flush_every_s=60)
    for step in (1, 2, 3):
        first.log_metrics({"train/loss_g": float(step)}, step)
    assert first.close()  # a worker that died after its checkpoint at step 2 had sent step 3
    assert logged_steps(client, run_id) == {"train/loss_g": 3}
    # The restarted worker redoes steps 3-4 from the checkpoint, holding them until its flush.
    second = MlflowTracker(
        client, run_id, flush_every_s=60, logged=logged_steps(client, run_id), hold_until_flush=True
    )
    second.log_metrics({"train/loss_g": 30.0}, 3)
    second.log_metrics({"train/loss_g": 40.0, "eval/fid": 9.0}, 4)
    assert second.redone == 1 and second.buffered == 0  # held, not queued
    assert second.flush()
    second.log_metrics({"train/loss_g": 50.0}, 5)  # never flushed: a PBT pause drops it
    history = client.get_metric_history(run_id, "train/loss_g")
    assert [(m.step, m.value) for m in history] == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 40.0)]
    assert [m.step for m in client.get_metric_history(run_id, "eval/fid")] == [4]
    # One step (3) was trained again, its point already in the run: logged with step 4.
    redone = client.get_metric_history(run_id, "train/redone_steps")
    assert [(m.step, m.value) for m in redone] == [(4, 1.0)]


def test_the_spool_goes_with_close_and_is_kept_renamed_when_unsent(tmp_path: Path) -> None:
    client, experiment = _client(tmp_path)
    run_id = client.create_run(experiment).info.run_id
    (tmp_path / "notes.txt").write_text("x")
    sent = MlflowTracker(client, run_id)
    sent.log_artifact(tmp_path / "notes.txt", "notes")
    spool = sent._scratch.path
    assert spool.name.startswith(SPOOL_PREFIX) and sent.close()
    assert not spool.exists() and sent.kept is None
    # A store that cannot take the records (no such run): the artifacts stay, in a folder whose
    # name the next tracker does not reap.
    unsent = MlflowTracker(
        client, "no-such-run", close_timeout_s=0.5, retry_backoff_s=0.1, max_backoff_s=0.1
    )
    unsent.log_artifact(tmp_path / "notes.txt", "notes")
    spool = unsent._scratch.path
    try:
        assert not unsent.close()
        assert not spool.exists() and unsent.kept.name.startswith(UNSENT_PREFIX)
        assert [p.read_text() for p in unsent.kept.rglob("notes.txt")] == ["x"]
    finally:
        shutil.rmtree(unsent.kept or spool, ignore_errors=True)


def test_unsent_points_travel_and_are_sent_once_by_the_next_worker(tmp_path: Path) -> None:
    from sislab.trainers.mlflow_tracker import logged_steps

    client, experiment = _client(tmp_path)
    run_id = client.create_run(experiment).info.run_id
    dying = MlflowTracker(client, run_id, flush_every_s=60)
    dying.log_metrics({"train/loss_g": 1.0}, 1)
    assert dying.flush()
    for step in (2, 3):  # MLflow did not take these before the worker died
        dying.log_metrics({"train/loss_g": float(step), "lr/g": 0.1}, step)
    carried = dying.unsent_metrics()  # what its last checkpoint holds
    assert [(k, s) for k, _, _, s in carried] == [
        ("train/loss_g", 2), ("lr/g", 2), ("train/loss_g", 3), ("lr/g", 3)
    ]  # fmt: skip
    # A point may still leave a dying process after its checkpoint was written: step 2 of loss_g.
    client.log_metric(run_id, "train/loss_g", 2.0, step=2)
    restarted = MlflowTracker(client, run_id, flush_every_s=60, logged=logged_steps(client, run_id))
    restarted.resend(carried)
    restarted.log_metrics({"train/loss_g": 4.0}, 4)
    assert restarted.close()
    # MLflow returns a history by timestamp: the resent step 3 carries its logging time, before
    # the direct step 2's (a loaded machine separates them by milliseconds).
    history = client.get_metric_history(run_id, "train/loss_g")
    assert sorted((m.step, m.value) for m in history) == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]
    assert sorted(m.step for m in client.get_metric_history(run_id, "lr/g")) == [2, 3]


def test_the_last_checkpoints_flush_and_close_share_one_wait(tmp_path: Path) -> None:
    client, _ = _client(tmp_path)
    # No such run: every send fails, as while the server is down.
    tracker = MlflowTracker(
        client, "no-such-run", close_timeout_s=2.0, retry_backoff_s=0.1, max_backoff_s=0.1
    )
    tracker.log_metrics({"train/loss_g": 1.0}, 1)
    assert not tracker.flush(last=True)
    # The budget is spent: close stops the sender without a second wait for the outage.
    assert tracker._end_by is not None and tracker._end_by <= time.monotonic()
    assert not tracker.close()
    assert [(k, v, s) for k, v, _, s in tracker.unsent_metrics()] == [("train/loss_g", 1.0, 1)]
