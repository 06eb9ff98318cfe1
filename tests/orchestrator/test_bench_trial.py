"""``sislab bench trial`` compares one configuration: which sweeps it takes."""

from __future__ import annotations

from pathlib import Path

import pytest

from sislab.errors import SpecError
from sislab.orchestrator.bench_trial import EpochTiming, TrialBench, single_configuration
from sislab.spec.loader import spec_from_dict

BASE = {
    "name": "bt",
    "method": "spade",
    "dataset": {"uri": "synthetic://shapes?size=32&classes=4&num=8", "image_size": [32, 32]},
    "model": {"ngf": 8, "ndf": 8},
    "train": {"batch_size": 2},
    "resources": {"num_workers": 1},
}


def test_learning_rates_and_seeds_leave_one_configuration() -> None:
    space = {"train.lr_g": {"grid": [1e-4, 2e-4]}, "train.seed": {"grid": [0, 1]}}
    spec = spec_from_dict({**BASE, "search": {"space": space}})
    trial = single_configuration(spec)
    assert (trial.method, trial.model.ngf, trial.train.batch_size) == ("spade", 8, 2)


def test_a_sweep_over_widths_is_refused_with_the_fix() -> None:
    spec = spec_from_dict({**BASE, "search": {"space": {"model.ngf": {"grid": [8, 16]}}}})
    with pytest.raises(SpecError, match="2 configurations of different speed") as error:
        single_configuration(spec)
    assert "narrow search.space" in error.value.fix


def _epochs(*rows: tuple[float, float | None]) -> list[EpochTiming]:
    return [EpochTiming(i + 1, first, steady, 0.0, 0.0) for i, (first, steady) in enumerate(rows)]


def test_epoch_boundaries_are_epochs_two_on_each_against_its_own_epoch() -> None:
    # Epoch 1's first step (warm-up) is left out; each later epoch's first iteration is compared
    # with its own epoch's steady state, so a machine that slows down between epochs does not
    # read as a slow boundary.
    epochs = _epochs((5.0, 1.0), (1.1, 1.0), (2.2, 2.0), (2.0, 2.0))
    result = TrialBench("x", 1.0, epochs, Path("."), "FINISHED", bare_after_iter_s=3.0)
    assert result.first_over_steady == pytest.approx(1.1)
    assert result.first_iter_s == pytest.approx(2.0)
    # The trial's steady state against the mean of the bare step before and after it.
    assert result.bare_s == pytest.approx(2.0)
    assert result.ratios() == pytest.approx({"steady/bare": 0.75, "first/steady": 1.1})


def test_one_epoch_compares_its_own_first_iteration() -> None:
    result = TrialBench("x", 2.0, _epochs((1.5, 1.0)), Path("."), "FINISHED")
    assert result.bare_s == 2.0
    assert result.ratios() == pytest.approx({"steady/bare": 0.5, "first/steady": 1.5})


def test_the_step_inside_each_iteration_is_compared_within_its_epoch() -> None:
    # (first iteration, steady iteration, first step, steady step, steady step CPU): epoch 2 ran
    # twice as slow as epoch 1, the loop's share of each iteration stayed the same.
    rows = [(1.5, 1.02, 1.45, 1.0, 0.99), (2.06, 2.04, 2.0, 2.0, 1.98), (2.3, 2.04, 2.2, 2.0, 2.0)]
    epochs = [
        EpochTiming(i + 1, first, steady, 0.0, 0.0, first_step, step, first_step, cpu)
        for i, (first, steady, first_step, step, cpu) in enumerate(rows)
    ]
    result = TrialBench("x", 1.0, epochs, Path("."), "FINISHED", bare_after_iter_s=2.0)
    ratios = result.ratios()
    assert ratios["steady/step"] == pytest.approx(1.02)  # the machine's drift leaves it alone
    assert ratios["step/bare"] == pytest.approx(2.0 / 1.5)
    assert ratios["first_step/step"] == pytest.approx((1.0 + 1.1) / 2)
    assert ratios["step_cpu/step"] == pytest.approx(0.99)
    # Outside the step: 60 and 100 ms in the first iterations of epochs 2, 3; 20-40 ms steady.
    assert result.outside_step_s() == pytest.approx({"first": 0.08, "steady": 0.04})


def test_runs_logged_before_the_step_was_timed_have_no_step_ratios() -> None:
    result = TrialBench("x", 1.0, _epochs((1.5, 1.0), (1.0, 1.0)), Path("."), "FINISHED")
    assert set(result.ratios()) == {"steady/bare", "first/steady"}
    assert result.outside_step_s() == {}


def test_the_epochs_end_is_a_share_of_the_epoch_and_counted_per_iteration() -> None:
    # Four iterations of 1 s per epoch (a 0.8 s step in each); epoch 2 ends with a grid (0.5 s)
    # and a checkpoint (1.5 s), epoch 3 with a grid only; epoch 1 (warm-up) is left out.
    parts = [{"grid": 0.5, "checkpoint": 9.0}, {"grid": 0.5, "checkpoint": 1.5}, {"grid": 0.7}]
    ends = [9.5, 2.0, 0.7]
    epochs = [
        EpochTiming(
            i + 1,
            1.0,
            1.0,
            0.0,
            0.0,
            first_step_s=0.8,
            step_s=0.8,
            iterations=4,
            epoch_s=4.0 + end,
            epoch_end_s=end,
            end_parts=part,
        )
        for i, (end, part) in enumerate(zip(ends, parts, strict=True))
    ]
    result = TrialBench("x", 1.0, epochs, Path("."), "FINISHED", bare_after_iter_s=1.0)
    ratios = result.ratios()
    assert ratios["end/epoch"] == pytest.approx((2.0 / 6.0 + 0.7 / 4.7) / 2)
    assert ratios["epoch/bare"] == pytest.approx((6.0 / 4 + 4.7 / 4) / 2)
    assert ratios["epoch/step"] == pytest.approx((6.0 / 4 + 4.7 / 4) / 2 / 0.8)
    assert result.epoch_end_s == pytest.approx(2.0)
    assert result.end_parts_s() == {"grid": (0.5, 3), "checkpoint": (5.25, 2)}
