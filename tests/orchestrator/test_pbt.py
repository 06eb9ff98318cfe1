"""PBT's pieces that need no sweep: the initial population, explore's bounds, the last epoch,
the Train run a trial starts from a pointer, and the pointer itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from ray.tune import Checkpoint
from ray.tune.schedulers import TrialScheduler
from ray.tune.search.sample import Float

from sislab.orchestrator.pbt import (
    POPULATION_KEY,
    ClipToDomains,
    mutations,
    population,
    scheduler,
    trial_config,
)
from sislab.orchestrator.search_algs import tune_search
from sislab.orchestrator.trial import train_run
from sislab.orchestrator.tune_report import POINTER_FILE, read_pointer
from sislab.search_spaces.validate import space_of
from sislab.spec.loader import spec_from_dict
from sislab.trainers.checkpoint import CheckpointPointer

MUTATIONS = {
    "train.lr_g": {"loguniform": [1e-5, 1e-3]},
    "losses.feat_match": {"uniform": [1.0, 20.0]},
    "losses.kl": {"choice": [0.01, 0.05, 0.1]},
}


def _spec(seed: int = 0):
    return spec_from_dict(
        {
            "name": "p",
            "train": {"epochs": 10, "seed": seed},
            "search": {
                "algorithm": "grid",
                "space": {"train.lr_g": {"grid": [1e-4, 2e-4, 4e-4]}},
                "scheduler": {"pbt": {"perturbation_interval": 2, "mutations": MUTATIONS}},
            },
        }
    )


def test_population_keeps_searched_values_and_draws_the_others_seeded():
    spec = _spec()
    configs = population(spec, space_of(spec))
    assert [c["train.lr_g"] for c in configs] == [1e-4, 2e-4, 4e-4]
    assert all(1.0 <= c["losses.feat_match"] <= 20.0 for c in configs)
    assert all(c["losses.kl"] in (0.01, 0.05, 0.1) for c in configs)
    assert population(spec, space_of(spec)) == configs  # seeded by train.seed
    other = population(_spec(seed=1), space_of(_spec(seed=1)))
    assert [c["losses.feat_match"] for c in other] != [c["losses.feat_match"] for c in configs]
    searcher, num_samples, param_space = tune_search(spec, space_of(spec))
    assert searcher is None and num_samples == 1
    assert param_space[POPULATION_KEY]["grid_search"] == configs


def test_mutations_and_explore_bounds():
    muts = mutations(_spec().search.scheduler.pbt)[POPULATION_KEY]
    assert isinstance(muts["train.lr_g"], Float) and muts["losses.kl"] == [0.01, 0.05, 0.1]
    clip = ClipToDomains(_spec().search.scheduler.pbt.domains())
    config = {POPULATION_KEY: {"train.lr_g": 2e-3, "losses.feat_match": 0.8, "losses.kl": 0.1}}
    clipped = clip(config)[POPULATION_KEY]
    assert clipped == {"train.lr_g": 1e-3, "losses.feat_match": 1.0, "losses.kl": 0.1}
    assert trial_config(config) == config[POPULATION_KEY]
    assert trial_config({"train.lr_g": 1}) == {"train.lr_g": 1}  # without PBT


def test_no_perturbation_at_the_last_epoch():
    pbt = scheduler(_spec(), "train/loss_g", "min")
    # At the last epoch the trial continues to its end; no controller or trial state is needed.
    assert pbt.on_trial_result(None, None, {"epoch": 10.0, "train/loss_g": 1.0}) == (
        TrialScheduler.CONTINUE
    )
    with pytest.raises(KeyError):  # earlier epochs go to Ray's PBT (which knows no such trial)
        pbt.on_trial_result(None, "unknown", {"epoch": 4.0, "train/loss_g": 1.0})


def test_train_run_from_pointer():
    assert train_run("t1", None) == ("train-t1", None)
    own = CheckpointPointer(
        trial_id="t1", run_name="train-t1-from-t2-e4", path="/s/x", epoch=6, iteration=60
    )
    assert train_run("t1", own) == ("train-t1-from-t2-e4", None)  # continues its own run
    donor = CheckpointPointer(
        trial_id="t2", run_name="train-t2", path="/s/train-t2/checkpoint_3", epoch=8, iteration=80
    )
    assert train_run("t1", donor) == ("train-t1-from-t2-e8", donor)  # a new run from the donor


def test_pointer_round_trip(tmp_path: Path):
    pointer = CheckpointPointer(
        trial_id="t2", run_name="train-t2", path="bucket/p/checkpoint_1", epoch=2, iteration=20
    )
    (tmp_path / POINTER_FILE).write_text(pointer.model_dump_json())
    assert read_pointer(Checkpoint.from_directory(str(tmp_path))) == pointer
    assert read_pointer(None) is None
    (tmp_path / POINTER_FILE).unlink()
    assert read_pointer(Checkpoint.from_directory(str(tmp_path))) is None


def test_search_show_prints_the_population_the_sweep_starts_from():
    from sislab.cli.search import show_data
    from sislab.spec.loader import load_spec

    example = Path(__file__).resolve().parents[2] / "examples" / "spade_pbt.yaml"
    data = show_data(str(example), None)["pbt"]
    spec = load_spec(example)
    assert data["population"] == population(spec, space_of(spec))
    assert [c["train.lr_g"] for c in data["population"]] == [1e-4, 5e-4]
    assert data["mutations"]["losses.feat_match"] == {"uniform": [1.0, 20.0]}
    assert (data["perturbation_interval"], data["synch"]) == (1, True)


def test_effective_schedule_runs_through_the_donors():
    from sislab.orchestrator.pbt_lineage import Lineage, schedule

    def exploit(epoch, donor, lr):
        return {"epoch": epoch, "donor_trial": donor, "hyperparameters": {"lr": lr}}

    trials = {
        # a cloned b at 4 (b had cloned c at 2), then c at 8
        "a": Lineage("ra", {"lr": 1.0}, [exploit(4, "b", 0.5), exploit(8, "c", 0.25)]),
        "b": Lineage("rb", {"lr": 2.0}, [exploit(2, "c", 3.0), exploit(6, "a", 9.0)]),
        "c": Lineage("rc", {"lr": 4.0}, []),
    }
    assert schedule(trials, "c") == [
        {"from_epoch": 0, "trial": "c", "hyperparameters": {"lr": 4.0}}
    ]
    segments = [
        (s["from_epoch"], s["trial"], s["hyperparameters"]["lr"]) for s in schedule(trials, "a")
    ]
    assert segments == [(0, "c", 4.0), (8, "a", 0.25)]  # a's weights are c's from epoch 8 on
    # b's weights: a's up to 6, and a's up to 6 are b's up to 4, which are c's up to 2.
    segments = [
        (s["from_epoch"], s["trial"], s["hyperparameters"]["lr"]) for s in schedule(trials, "b")
    ]
    assert segments == [(0, "c", 4.0), (2, "b", 3.0), (4, "a", 0.5), (6, "b", 9.0)]
