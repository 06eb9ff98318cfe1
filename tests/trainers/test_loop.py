"""The training loop in one process (LocalContext): losses, grids, checkpoints and resume."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from sislab.spec.loader import spec_from_dict
from sislab.trainers import build
from sislab.trainers.checkpoint import read_meta
from sislab.trainers.context import LocalContext
from sislab.trainers.loop import run_training
from sislab.trainers.tracking import MemoryTracker

SPEC = {
    "name": "loop",
    "method": "spade",
    "dataset": {"uri": "synthetic://shapes?size=32&classes=4&num=8&val=2", "image_size": [32, 32]},
    "model": {"ngf": 4, "ndf": 4},
    "train": {
        "epochs": 2,
        "lr_decay_epochs": 1,
        "batch_size": 2,
        "max_iters_per_epoch": 2,
        "log_every_iters": 1,
    },
    "eval": {"num_grid_samples": 2},
    "resources": {"num_workers": 1},
}


def _run(spec_data: dict, root: Path, tracker: MemoryTracker):
    spec = spec_from_dict(spec_data)
    ctx = LocalContext(root)
    geometry = build.dataset_geometry(spec)
    procedure, notes = build.build_procedure(spec, geometry, ctx.device, 1, lambda m: m)
    state = run_training(
        build.loop_config(spec, geometry, None),
        ctx=ctx,
        source=build.synthetic_source(spec, 0, 1),
        tracker=tracker,
        procedure=procedure,
    )
    return state, ctx, procedure, notes


def test_loop_trains_logs_and_checkpoints(tmp_path: Path) -> None:
    tracker = MemoryTracker()
    state, ctx, procedure, notes = _run(SPEC, tmp_path, tracker)
    assert (state.epoch, state.iteration, state.images_seen) == (2, 4, 8)
    losses = [(step, m) for step, m in tracker.metrics if "train/loss_g" in m]
    assert [step for step, _ in losses] == [1, 2, 3, 4]
    for _, metrics in losses:
        assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
        assert {"train/loss_g", "train/loss_d", "train/g_gan", "train/d_real"} <= set(metrics)
    # Each epoch's timing, once, at its last iteration: the first iteration (its batch wait
    # included) and the steady state, the part of each spent waiting for data and in the step.
    timings = [(step, m) for step, m in tracker.metrics if "system/first_iter_s" in m]
    assert [step for step, _ in timings] == [2, 4]
    # The step alone (wall and the loop thread's CPU time) is part of its iteration.
    for _, m in timings:
        assert set(m) == {
            f"system/{first}{name}" for first in ("first_", "") for name in
            ("iter_s", "batch_wait_s", "step_s", "step_cpu_s")
        }  # fmt: skip
        for first in ("first_", ""):
            iteration, step = m[f"system/{first}iter_s"], m[f"system/{first}step_s"]
            assert 0 <= m[f"system/{first}batch_wait_s"] < iteration
            assert 0 < step < iteration
            assert 0 < m[f"system/{first}step_cpu_s"] <= step * 1.01
    # After each epoch's report, the epoch's end (grid and checkpoint here, each epoch) and the
    # whole epoch: its iterations, then its end.
    ends = [(step, m) for step, m in tracker.metrics if "system/epoch_end_s" in m]
    assert [step for step, _ in ends] == [2, 4]
    for (_, end), (_, iters) in zip(ends, timings, strict=True):
        assert set(end) == {f"system/{k}_s" for k in ("epoch", "epoch_end", "grid", "checkpoint")}
        assert 0 < end["system/grid_s"] + end["system/checkpoint_s"] <= end["system/epoch_end_s"]
        iterations = iters["system/first_iter_s"] + iters["system/iter_s"]  # two per epoch
        assert end["system/epoch_end_s"] + iterations <= end["system/epoch_s"]
    # One report per epoch, each with the epoch's mean losses; a checkpoint at every epoch.
    assert [r["epoch"] for r in ctx.reports] == [1.0, 2.0]
    assert len(list(tmp_path.glob("checkpoint_*"))) == 2
    # A labelled grid per evaluation (each epoch here) in MLflow's image view, at its step.
    assert [(key, step) for key, step, _ in tracker.images] == [("samples", 2), ("samples", 4)]
    assert "off" in notes["sislab.perceptual_loss"]
    # SPADE decays after each epoch: both epochs train at the base rate, then 0. A rate is
    # logged when it changes, so the constant rate is one point, not a flat line.
    lr_points = [(step, m["lr/g"]) for step, m in tracker.metrics if "lr/g" in m]
    assert lr_points == [(1, pytest.approx(1e-4))]
    assert procedure.learning_rates() == {"g": 0.0, "d": 0.0}


def test_resume_continues_from_saved_iteration(tmp_path: Path) -> None:
    first = dict(SPEC, train=dict(SPEC["train"], epochs=3))
    tracker = MemoryTracker()
    spec = spec_from_dict(first)
    ctx = LocalContext(tmp_path)
    geometry = build.dataset_geometry(spec)
    procedure, _ = build.build_procedure(spec, geometry, ctx.device, 1, lambda m: m)
    cfg = build.loop_config(spec, geometry, None)
    # Train 1 epoch only (a config with epochs=1 would change the LR schedule; stop by source).
    source = build.synthetic_source(spec, 0, 1)
    run_training(
        build.loop_config(spec_from_dict(dict(first, train=dict(first["train"], epochs=1))),
                          geometry, None),
        ctx=ctx, source=source, tracker=tracker, procedure=procedure,
    )  # fmt: skip
    saved = {k: v.clone() for k, v in procedure.state_dict()["generator"].items()}

    # A fresh process would rebuild everything: do the same and resume from the checkpoint.
    resumed_tracker = MemoryTracker()
    procedure2, _ = build.build_procedure(spec, geometry, ctx.device, 1, lambda m: m)
    restored = {}

    original_load = procedure2.load_state_dict

    def spy(state):
        original_load(state)
        restored.update(state["generator"])

    procedure2.load_state_dict = spy
    state = run_training(cfg, ctx=ctx, source=source, tracker=resumed_tracker, procedure=procedure2)
    assert all(torch.equal(saved[k], restored[k]) for k in saved)
    timing = ("system/first_iter_s", "system/epoch_end_s")  # once per epoch, at its last step
    steps = [step for step, m in resumed_tracker.metrics if not any(k in m for k in timing)]
    assert steps[0] == 2  # the resume marker at the saved iteration
    assert resumed_tracker.metrics[0][1]["train/resumed_from_iteration"] == 2
    assert steps[1:] == [3, 4, 5, 6]
    assert (state.epoch, state.iteration) == (3, 6)


def test_bf16_autocast_trains_with_finite_losses(tmp_path: Path) -> None:
    data = dict(SPEC, train=dict(SPEC["train"], precision="bf16", epochs=1))
    tracker = MemoryTracker()
    state, *_ = _run(data, tmp_path, tracker)
    assert state.iteration == 2
    losses = [m for _, m in tracker.metrics if "train/loss_g" in m][-1]
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())


def test_restore_from_a_donor_keeps_weights_and_scores_not_its_best(tmp_path: Path) -> None:
    """A checkpoint another MLflow run wrote (a PBT donor's): weights, optimiser state and
    latest scores load, the best checkpoint stays the donor's, and the rates are this spec's."""
    from sislab.trainers.checkpoint import read_meta, save_meta
    from sislab.trainers.loop import restore

    _run(SPEC, tmp_path / "donor", MemoryTracker())
    folder = sorted((tmp_path / "donor").glob("checkpoint_*"))[0]  # after epoch 1 of 2
    meta = read_meta(folder)
    best = {"metric": "kid", "value": 0.1, "epoch": 1, "uri": "s3://b/train-d/best_checkpoint"}
    save_meta(folder, meta.model_copy(update={"mlflow_run_id": "donor", "best": best,
                                              "eval_metrics": {"eval/kid": 0.1}}))  # fmt: skip
    spec = spec_from_dict(dict(SPEC, train=dict(SPEC["train"], lr_g=3e-4)))
    geometry = build.dataset_geometry(spec)

    def restored(run_id: str):
        root = tmp_path / f"restored-by-{run_id}"
        shutil.copytree(folder, root / "checkpoint_000001")
        ctx = LocalContext(root)
        procedure, _ = build.build_procedure(spec, geometry, ctx.device, 1, lambda m: m)
        return restore(procedure, ctx, build.loop_config(spec, geometry, run_id)), procedure

    state, procedure = restored("recipient")
    assert (state.epoch, state.iteration, state.eval_metrics) == (1, 2, {"eval/kid": 0.1})
    assert state.best is None  # the donor's best checkpoint is not this run's
    saved = torch.load(folder / "state.pt", weights_only=True)["procedure"]["generator"]
    for name, tensor in procedure.generator.state_dict().items():
        torch.testing.assert_close(tensor, saved[name])
    # The new base rate at the donor's place in the schedule (decay starts after epoch 1 of 2).
    assert procedure.learning_rates()["g"] == pytest.approx(3e-4)
    assert procedure.learning_rates()["d"] == pytest.approx(4e-4)
    assert restored("donor")[0].best == best  # the run's own checkpoint keeps its best


class _UnreachableOnce(MemoryTracker):
    """A tracker whose first flush times out (MLflow down): its records stay in the process."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self, *, last: bool = False) -> bool:
        self.flushes += 1
        return self.flushes > 1


def test_no_checkpoint_commits_past_records_mlflow_has_not_taken(tmp_path: Path) -> None:
    tracker = _UnreachableOnce()
    _, ctx, _, _ = _run(SPEC, tmp_path, tracker)
    # Epoch 1's flush failed: no checkpoint, so a crash would train (and log) it again; the
    # last epoch always gets one.
    assert [r["epoch"] for r in ctx.reports] == [1.0, 2.0]
    assert len(list(tmp_path.glob("checkpoint_*"))) == 1


class _Unreachable(MemoryTracker):
    """MLflow down for good: every flush fails and every point stays unsent."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes: list[bool] = []  # ``last`` of each flush
        self.unsent: list[tuple[str, float, int, int]] = []
        self.resent: list[tuple[str, float, int, int]] = []

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.unsent += [(k, float(v), 0, step) for k, v in metrics.items()]

    def flush(self, *, last: bool = False) -> bool:
        self.flushes.append(last)
        return False

    def unsent_metrics(self) -> list[tuple[str, float, int, int]]:
        return list(self.unsent)

    def resend(self, points: list[tuple[str, float, int, int]]) -> None:
        self.resent += points


def test_the_last_checkpoint_carries_the_points_mlflow_has_not_taken(tmp_path: Path) -> None:
    down = _Unreachable()
    _run(SPEC, tmp_path, down)
    # Epoch 1's flush failed (no checkpoint); the last one waited as long as close would.
    assert down.flushes[:2] == [False, True]
    (checkpoint,) = tmp_path.glob("checkpoint_*")
    carried = read_meta(checkpoint).unsent_metrics
    assert [s for k, _, _, s in carried if k == "train/loss_g"] == [1, 2, 3, 4]
    assert carried == down.unsent[: len(carried)]
    # A worker of the same run that resumes from it (a crash after the checkpoint) sends them.
    again = _Unreachable()
    state, _, _, _ = _run(SPEC, tmp_path, again)
    assert state.iteration == 4 and again.resent == carried
