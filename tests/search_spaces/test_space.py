"""Conditional parameters, method sub-spaces, list values and seed repeats of a search space."""

from __future__ import annotations

import optuna
import pytest

from sislab.errors import SpecError
from sislab.search_spaces.space import (
    build_space,
    configurations,
    grid_configurations,
    is_active,
    overrides_of,
)
from sislab.search_spaces.trial_spec import switch_method, trial_spec
from sislab.spec.loader import collect_problems, spec_from_dict

CONDITIONAL = {
    "model.nonlinearity": {"choice": ["softmax", "sigmoid", "tanh"]},
    "model.temperature": {"loguniform": [0.01, 1.0], "when": {"model.nonlinearity": "softmax"}},
    "model.num_candidates": {
        "randint": [1, 5],
        "when": {"model.nonlinearity": ["sigmoid", "tanh"]},
    },
    "train.lr_g": {"grid": [1.0e-4, 2.0e-4]},
}


def _check_conditions(config: dict) -> None:
    if "model.temperature" in config:
        assert config["model.nonlinearity"] == "softmax"
    else:
        assert config["model.nonlinearity"] != "softmax"
    if "model.num_candidates" in config:
        assert config["model.nonlinearity"] in ("sigmoid", "tanh")
    else:
        assert config["model.nonlinearity"] == "softmax"


def test_conditional_never_yields_inactive_parameter_500_samples():
    space = build_space(CONDITIONAL)
    configs = configurations(space, num_samples=250, seed=3)
    assert len(configs) == 500  # 2 grid values x 250 samples
    for config in configs:
        _check_conditions(config)
    seen = {c["model.nonlinearity"] for c in configs}
    assert seen == {"softmax", "sigmoid", "tanh"}  # every branch is reached


def test_optuna_define_by_run_suggests_only_active_parameters():
    from sislab.orchestrator.search_algs import OptunaSpace

    space = build_space(CONDITIONAL)
    define = OptunaSpace(space)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    for _ in range(60):
        trial = study.ask()
        config = overrides_of(define(trial), space)
        _check_conditions(config)
        assert set(trial.params) == set(config)
        study.tell(trial, config["train.lr_g"])


def test_method_subspaces_and_counts():
    space = build_space(
        {"train.lr_g": {"grid": [1e-4, 2e-4]}},
        methods={
            "spade": {"model.ngf": {"grid": [8, 16]}},
            "scgan": {
                "model.nonlinearity": {"grid": ["softmax", "tanh"]},
                "model.ngf": {"grid": [8]},
            },
            "clade": {},
        },
    )
    configs = grid_configurations(space)
    assert len(configs) == 2 * 2 + 2 * 2 + 1 * 2
    for config in configs:
        if "model.nonlinearity" in config:
            assert config["method"] == "scgan"
        if config["method"] == "clade":
            assert set(config) == {"method", "train.lr_g"}


def test_list_valued_choices_and_seed_repeats():
    schedules = [[8, 8, 4, 4, 2, 2, 1], [8, 4, 2, 1, 1, 1, 1]]
    space = build_space({"model.decoder_groups": {"grid": schedules}}, repeats=3, base_seed=10)
    configs = grid_configurations(space)
    assert len(configs) == 6
    assert [c["model.decoder_groups"] for c in configs[:3]] == [schedules[0]] * 3
    assert [c["train.seed"] for c in configs] == [10, 11, 12, 10, 11, 12]
    sampled = configurations(build_space({"losses.kl": {"uniform": [0, 1]}}, repeats=2), 2, 0)
    # Repeats of one sample share its values and differ only in the seed.
    assert sampled[0]["losses.kl"] == sampled[1]["losses.kl"]
    assert sampled[0]["losses.kl"] != sampled[2]["losses.kl"]


@pytest.mark.parametrize(
    ("space", "match"),
    [
        ({"model.ngf": {"grid": [8], "when": {"model.ndf": 8}}}, "not searched"),
        (
            {
                "model.ngf": {"grid": [8], "when": {"model.ndf": 8}},
                "model.ndf": {"grid": [8], "when": {"model.ngf": 8}},
            },
            "cycle",
        ),
        ({"model.ngf": {"grid": [8], "when": "x"}}, "when takes a mapping"),
    ],
)
def test_malformed_conditions(space, match):
    with pytest.raises(SpecError, match=match):
        build_space(space)


def test_validate_checks_every_conditional_configuration():
    data = {
        "name": "x",
        "method": "scgan",
        "model": {},
        "search": {"space": CONDITIONAL | {"model.temperature": {
            "uniform": [0.0, 1.0], "when": {"model.nonlinearity": "softmax"}}}},
    }  # fmt: skip
    _, problems = collect_problems(data)
    assert len(problems) == 1
    ((path, message),) = problems
    assert path == ("search",)
    assert "model.nonlinearity='softmax'" in message and "model.temperature" in message
    assert "greater than 0" in message


def test_validate_method_subspace_key_of_wrong_method():
    data = {"name": "x", "search": {"methods": {"spade": {"model.temperature": {"grid": [1.0]}}}}}
    _, problems = collect_problems(data)
    assert problems and problems[0][0] == ("search", "methods", "spade", "model.temperature")
    _, problems = collect_problems({"name": "x", "search": {"methods": {"spaed": {}}}})
    assert "did you mean 'spade'" in problems[0][1]


def test_switch_method_keeps_changed_shared_fields():
    base = spec_from_dict({"name": "x", "model": {"ngf": 8, "ndf": 8}})
    data = switch_method(base.model_dump(mode="json"), "scgan")
    assert data["model"] == {"ngf": 8, "ndf": 8, "method": "scgan"}
    spec = trial_spec(base, {"method": "scgan", "model.temperature": 0.5})
    assert spec.method == "scgan" and spec.model.ngf == 8 and spec.model.temperature == 0.5


def test_active_requires_every_condition():
    space = build_space(CONDITIONAL)
    temperature = next(p for p in space.params if p.key == "model.temperature")
    assert is_active(temperature, {"model.nonlinearity": "softmax"})
    assert not is_active(temperature, {"model.nonlinearity": "tanh"})
    assert not is_active(temperature, {})
