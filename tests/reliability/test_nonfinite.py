"""Numerical faults: a loss that becomes NaN/inf mid-run, with train.on_nonfinite stop and skip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sislab.errors import SislabError, TrainingError
from sislab.spec.loader import spec_from_dict
from sislab.trainers import build
from sislab.trainers.checkpoint import load_checkpoint
from sislab.trainers.context import LocalContext
from sislab.trainers.loop import run_training
from sislab.trainers.tracking import MemoryTracker

EPOCHS, ITERS = 2, 2
SPEC = {
    "name": "nonfinite",
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
    "eval": {"num_grid_samples": 1, "every_epochs": 100, "metrics": []},
    "losses": {"perceptual": 0},
    "resources": {"num_workers": 1},
}


def _setup(root: Path, on_nonfinite: str | None, precision: str = "fp32"):
    train = dict(SPEC["train"], precision=precision)
    if on_nonfinite is not None:
        train["on_nonfinite"] = on_nonfinite
    spec = spec_from_dict(dict(SPEC, train=train))
    ctx = LocalContext(root)
    geometry = build.dataset_geometry(spec)
    procedure, _ = build.build_procedure(spec, geometry, ctx.device, 1, lambda m: m)
    return spec, geometry, ctx, procedure


def _poison(procedure, side: str, at_call: int, value: float) -> dict:
    """Make the ``side`` ('generator'/'discriminator') loss ``value`` at its ``at_call``-th call."""
    name = f"{side}_losses"
    original = getattr(procedure, name)
    calls = {"n": 0}

    def poisoned(batch, semantics):
        loss, terms = original(batch, semantics)
        calls["n"] += 1
        if calls["n"] == at_call:
            loss = loss * value if value != value else loss + value  # NaN * x, x + inf
        return loss, terms

    setattr(procedure, name, poisoned)
    return calls


def _run(spec, geometry, ctx, procedure, tracker):
    return run_training(
        build.loop_config(spec, geometry, None),
        ctx=ctx,
        source=build.synthetic_source(spec, 0, 1),
        tracker=tracker,
        procedure=procedure,
    )


def _all_finite(procedure) -> bool:
    tensors = [*procedure.generator.parameters(), *procedure.discriminator.parameters()]
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def _adam_steps(optimizer) -> set[int]:
    return {int(s["step"]) for s in optimizer.state.values()}


def test_default_is_stop_and_training_error_is_a_sislab_error() -> None:
    assert spec_from_dict(SPEC).train.on_nonfinite == "stop"
    assert issubclass(TrainingError, SislabError)


def test_stop_ends_trial_with_clear_error_and_keeps_weights_finite(tmp_path: Path) -> None:
    spec, geometry, ctx, procedure = _setup(tmp_path, None)
    _poison(procedure, "generator", at_call=3, value=float("nan"))  # epoch 2, first iteration
    tracker = MemoryTracker()
    with pytest.raises(TrainingError, match=r"non-finite loss at iteration 3 \(epoch 2\) in the G"):
        _run(spec, geometry, ctx, procedure, tracker)
    # Recorded for MLflow, and the poisoned step never touched the weights.
    assert "non-finite loss" in tracker.tags["sislab.stop_reason"]
    assert tracker.tags["sislab.error"] == tracker.tags["sislab.stop_reason"]
    assert tracker.metrics[-1] == (3, {"train/nonfinite_steps": 1})
    assert _all_finite(procedure)
    assert _adam_steps(procedure.opt_g) == {2}  # 2 good G steps; the NaN one was refused
    # What survived: the epoch-1 checkpoint, finite, loadable for a resume.
    saved = sorted(tmp_path.glob("checkpoint_*"))
    assert len(saved) == 1
    meta, state = load_checkpoint(saved[0], "spade")
    assert (meta.epoch, meta.iteration) == (1, 2)
    assert all(bool(torch.isfinite(t).all()) for t in state["procedure"]["generator"].values())


@pytest.mark.parametrize(
    ("side", "value", "opt", "other"),
    [
        ("generator", float("nan"), "opt_g", "opt_d"),
        ("discriminator", float("inf"), "opt_d", "opt_g"),
    ],
)
def test_skip_drops_the_bad_step_counts_it_and_finishes(
    tmp_path: Path, side: str, value: float, opt: str, other: str
) -> None:
    spec, geometry, ctx, procedure = _setup(tmp_path, "skip")
    _poison(procedure, side, at_call=2, value=value)
    tracker = MemoryTracker()
    state = _run(spec, geometry, ctx, procedure, tracker)
    assert (state.epoch, state.iteration, state.nonfinite_steps) == (EPOCHS, EPOCHS * ITERS, 1)
    assert _all_finite(procedure)
    total = EPOCHS * ITERS
    assert _adam_steps(getattr(procedure, opt)) == {total - 1}  # exactly one step dropped
    assert _adam_steps(getattr(procedure, other)) == {total}
    counts = [(s, m["train/nonfinite_steps"]) for s, m in tracker.metrics if len(m) == 1]
    assert counts == [(2, 1)]
    # Tune sees finite epoch means (the bad iteration is left out) and the count.
    assert all(torch.isfinite(torch.tensor(v)).item() for r in ctx.reports for v in r.values()), (
        ctx.reports
    )
    assert [r.get("train/nonfinite_steps") for r in ctx.reports] == [1.0, 1.0]
    assert "sislab.stop_reason" not in tracker.tags


def test_fp16_nan_loss_stops_although_the_scaler_skipped_the_step(tmp_path: Path) -> None:
    spec, geometry, ctx, procedure = _setup(tmp_path, "stop", precision="fp16")
    _poison(procedure, "generator", at_call=1, value=float("nan"))
    tracker = MemoryTracker()
    with pytest.raises(TrainingError, match="non-finite loss at iteration 1"):
        _run(spec, geometry, ctx, procedure, tracker)
    assert _all_finite(procedure)
    assert procedure.opt_g.state == {}  # the scaler never let the step reach Adam
