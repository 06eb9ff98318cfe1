"""MLflow unavailable: the tracking server is killed mid-run and restarted; nothing is lost and
training never waits on MLflow longer than the tracker's flush timeout."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sislab.chaos.servers import MlflowTestServer
from sislab.spec.loader import spec_from_dict
from sislab.trainers import build
from sislab.trainers.context import LocalContext
from sislab.trainers.loop import run_training
from sislab.trainers.mlflow_tracker import MlflowTracker

pytestmark = pytest.mark.slow

EPOCHS, ITERS = 4, 2
FLUSH_TIMEOUT_S = 2.0
SPEC = {
    "name": "mlflow-outage",
    "method": "spade",
    "dataset": {"uri": "synthetic://shapes?size=32&classes=4&num=8&val=2", "image_size": [32, 32]},
    "model": {"ngf": 4, "ndf": 4},
    "train": {
        "epochs": EPOCHS,
        "lr_decay_epochs": 0,
        "batch_size": 2,
        "max_iters_per_epoch": ITERS,
        "log_every_iters": 1,
    },
    "eval": {"num_grid_samples": 1, "every_epochs": 1, "metrics": []},
    "losses": {"perceptual": 0},
    "resources": {"num_workers": 1},
}


class OutageSource:
    """The synthetic source, killing the server before epoch 2 and restarting it before epoch 4."""

    def __init__(self, inner, server: MlflowTestServer, events: dict) -> None:
        self.inner, self.server, self.events = inner, server, events
        self.skipped_rows = 0

    def batches(self, epoch: int):
        if epoch == 1:
            self.server.stop()
            self.events["down_at"] = time.monotonic()
        if epoch == 3:
            self.events["restart_s"] = self.server.start()
            self.events["up_at"] = time.monotonic()
        yield from self.inner.batches(epoch)

    def grid_batch(self, num: int):
        return self.inner.grid_batch(num)


def test_tracker_buffers_while_mlflow_is_down_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One HTTP try per attempt: the tracker's own backoff decides when to try again.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    server = MlflowTestServer(tmp_path)
    server.start()
    try:
        client = MlflowClient(server.uri)
        run_id = client.create_run(client.create_experiment("outage")).info.run_id
        tracker = MlflowTracker(
            client, run_id, flush_every_s=0.2, flush_timeout_s=FLUSH_TIMEOUT_S,
            close_timeout_s=60, retry_backoff_s=0.2, max_backoff_s=1.0,
        )  # fmt: skip
        waits: list[float] = []
        flush = tracker.flush

        def timed_flush(timeout_s=None, *, last=False):
            begin = time.monotonic()
            try:
                return flush(timeout_s, last=last)
            finally:
                if not last:  # the last checkpoint's may wait as long as close
                    waits.append(time.monotonic() - begin)

        tracker.flush = timed_flush
        spec = spec_from_dict(SPEC)
        geometry = build.dataset_geometry(spec)
        ctx = LocalContext(tmp_path / "ckpt")
        procedure, _ = build.build_procedure(spec, geometry, ctx.device, 1, lambda m: m)
        events: dict = {}
        source = OutageSource(build.synthetic_source(spec, 0, 1), server, events)
        state = run_training(
            build.loop_config(spec, geometry, run_id),
            ctx=ctx, source=source, tracker=tracker, procedure=procedure,
        )  # fmt: skip
        assert (state.epoch, state.iteration) == (EPOCHS, EPOCHS * ITERS)
        failures_while_down = tracker.failures
        assert tracker.close(), "records left unsent after the server came back"
        drained_at = time.monotonic()

        # Training went on while MLflow was down; no epoch's flush waited past its timeout.
        assert failures_while_down >= 1
        assert max(waits) <= FLUSH_TIMEOUT_S + 0.5, waits
        # Nothing lost, nothing duplicated: every step of every metric, every grid.
        for key in ("train/loss_g", "train/loss_d", "train/images_per_s"):
            steps = sorted(m.step for m in client.get_metric_history(run_id, key))
            assert steps == list(range(1, EPOCHS * ITERS + 1)), (key, steps)
        grids = [a.path for a in client.list_artifacts(run_id, "images") if a.path.endswith(".png")]
        steps = sorted(int(p.split("+step+")[1].split("+")[0]) for p in grids)
        assert steps == [ITERS * (e + 1) for e in range(EPOCHS)], grids
        assert tracker.dropped == 0
        print(
            f"outage {events['up_at'] - events['down_at']:.1f}s, server restart "
            f"{events['restart_s']:.1f}s, {failures_while_down} failed attempts, drained "
            f"{drained_at - events['up_at']:.1f}s after restart, longest flush {max(waits):.2f}s"
        )
    finally:
        server.stop()
