"""The search-space DSL: parsing, representative values, Tune translation."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sislab.errors import SpecError
from sislab.search_spaces.dsl import (
    Choice,
    Grid,
    LogUniform,
    QUniform,
    RandInt,
    Uniform,
    parse_domain,
    parse_space,
    sample_values,
    to_tune,
)

SPACE = {
    "model.ngf": {"grid": [32, 64]},
    "train.precision": {"choice": ["fp32", "bf16"]},
    "losses.kl": {"uniform": [0.0, 0.1]},
    "train.lr_g": {"loguniform": [1e-5, 1e-3]},
    "resources.num_workers": {"randint": [1, 3]},
    "losses.gan": {"quniform": [0.5, 2.0, 0.5]},
}


def test_parse_space_kinds_and_values():
    domains = parse_space(SPACE)
    assert [type(d) for d in domains.values()] == [
        Grid,
        Choice,
        Uniform,
        LogUniform,
        RandInt,
        QUniform,
    ]
    assert [sample_values(d) for d in domains.values()] == [
        [32, 64],
        ["fp32", "bf16"],
        [0.0, 0.1],
        [1e-5, 1e-3],
        [1, 2],
        [0.5, 2.0],
    ]


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"grid": []}, "invalid grid"),
        ({"gird": [1]}, "unknown domain 'gird'; did you mean 'grid'"),
        ({"grid": [1], "choice": [2]}, "one-key mapping"),
        (3, "one-key mapping"),
        ({"uniform": [1.0]}, r"uniform takes 2 numbers: \{uniform: \[low, high\]\}"),
        ({"uniform": 1.0}, "uniform takes a list"),
        ({"loguniform": [0, 1]}, "low should be greater than 0"),
        ({"randint": [3, 3]}, "lower bound 3 must be below upper bound 3"),
        ({"quniform": [0, 1, 0]}, "q should be greater than 0"),
    ],
)
def test_parse_domain_errors(raw, match):
    with pytest.raises(ValueError, match=match):
        parse_domain(raw)


def test_parse_space_collects_every_problem():
    with pytest.raises(SpecError, match=r"search\.space\.a: .*; search\.space\.b: ") as info:
        parse_space({"a": {"grid": []}, "b": {"nope": [1]}, "c": {"grid": [1]}})
    assert len(info.value.problems) == 2


def test_to_tune_flat_and_nested():
    from ray import tune
    from ray.tune.search.sample import Categorical, Float, Integer

    flat = to_tune(parse_space(SPACE))
    assert flat["model.ngf"] == tune.grid_search([32, 64])
    assert isinstance(flat["train.precision"], Categorical)
    assert isinstance(flat["train.lr_g"], Float) and flat["train.lr_g"].lower == 1e-5
    assert isinstance(flat["resources.num_workers"], Integer)
    assert flat["resources.num_workers"].upper == 3
    nested = to_tune(parse_space(SPACE), nested=True)
    assert nested["model"]["ngf"] == {"grid_search": [32, 64]}
    assert set(nested["train"]) == {"precision", "lr_g"}


def test_spec_and_search_spaces_import_without_ray():
    code = (
        "import sys, sislab.search_spaces.dsl, sislab.spec.loader;"
        "assert 'ray' not in sys.modules and 'mlflow' not in sys.modules, 'ray imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
