"""``sislab bench trial`` compares one configuration: which sweeps it takes."""

from __future__ import annotations

import pytest

from sislab.errors import SpecError
from sislab.orchestrator.bench_trial import single_configuration
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
