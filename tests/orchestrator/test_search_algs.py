"""The grid/random searcher, Pareto fronts and the scheduler built from a spec."""

from __future__ import annotations

import os
from pathlib import Path

from ray.tune.search import Searcher

from sislab.orchestrator.search_algs import SpaceSearcher, pareto_front, scheduler, search_alg
from sislab.search_spaces.validate import space_of
from sislab.spec.loader import spec_from_dict


def test_space_searcher_hands_out_each_configuration_once(tmp_path: Path):
    configs = [{"train.lr_g": v} for v in (1, 2, 3)]
    searcher = SpaceSearcher(configs, "train/loss_g", "min")
    assert searcher.suggest("a") == {"train.lr_g": 1}
    assert searcher.suggest("a") == {"train.lr_g": 1}  # asked again: the same trial's config
    assert searcher.suggest("b") == {"train.lr_g": 2}
    searcher.save(str(tmp_path / "state.pkl"))
    restored = SpaceSearcher([], "train/loss_g", "min")
    restored.restore(str(tmp_path / "state.pkl"))
    assert restored.suggest("c") == {"train.lr_g": 3}
    assert restored.suggest("d") == Searcher.FINISHED


def test_search_alg_counts_grid_repeats_and_suite():
    spec = spec_from_dict(
        {
            "name": "x",
            "train": {"seed": 5},
            "search": {
                "algorithm": "grid",
                "suite": "scgan.table6_nonlinearity",
                "repeats": 2,
                "space": {"train.lr_g": {"grid": [1e-4, 2e-4]}},
            },
        }
    )
    searcher, num_samples = search_alg(spec, space_of(spec))
    assert num_samples == 5 * 2 * 2
    seeds = {searcher.suggest(str(i))["train.seed"] for i in range(num_samples)}
    assert seeds == {5, 6}


def test_pareto_front_two_objectives():
    points = [
        {"id": "a", "loss": 1.0, "params": 10},
        {"id": "b", "loss": 2.0, "params": 5},
        {"id": "c", "loss": 2.5, "params": 6},  # dominated by b
        {"id": "d", "loss": 0.5, "params": 20},
        {"id": "e", "loss": 1.0, "params": 10},  # equal to a: both stay
        {"id": "f", "loss": None, "params": 1},  # no value: ignored
    ]
    front = pareto_front(points, ["loss", "params"], ["min", "min"])
    assert [p["id"] for p in front] == ["d", "a", "e", "b"]
    front = pareto_front(points[:4], ["loss", "params"], ["min", "max"])
    assert [p["id"] for p in front] == ["d"]


def test_asha_on_epochs_with_first_metric():
    spec = spec_from_dict(
        {
            "name": "x",
            "train": {"epochs": 9},
            "search": {
                "metric": ["train/loss_g", "model/generator_params"],
                "algorithm": "optuna",
                "scheduler": {"asha": {"grace_period": 2}},
            },
        }
    )
    asha = scheduler(spec)
    assert asha._time_attr == "epoch" and asha.metric == "train/loss_g"
    assert asha._max_t == 9


def test_trial_processes_are_reused_only_without_a_scheduler():
    from sislab.orchestrator.sweep import reuse_trial_actors

    plain = spec_from_dict({"name": "x", "search": {"space": {"train.lr_g": {"grid": [1, 2]}}}})
    asha = spec_from_dict(
        {"name": "x", "train": {"epochs": 3}, "search": {"scheduler": {"asha": {}}}}
    )
    assert reuse_trial_actors(plain) and not reuse_trial_actors(asha)


def test_train_poll_default_keeps_a_users_value(monkeypatch):
    from sislab.orchestrator.sweep import TRAIN_POLL_ENV, TRAIN_POLL_S, ray_train_settings

    monkeypatch.delenv(TRAIN_POLL_ENV, raising=False)
    ray_train_settings()
    assert os.environ[TRAIN_POLL_ENV] == TRAIN_POLL_S
    monkeypatch.setenv(TRAIN_POLL_ENV, "3")
    ray_train_settings()
    assert os.environ[TRAIN_POLL_ENV] == "3"
