"""The recipe's precedence (spec file, then search, then recipe, then defaults) and its way to
the trainer."""

from __future__ import annotations

import json

import pytest
import torch

from sislab.cli.main import main
from sislab.recipes.apply import apply_recipe, explicit_fields, recipe_summary
from sislab.spec.loader import spec_from_dict

SYNTHETIC = {"uri": "synthetic://shapes?size=64&classes=4&num=4&val=2", "image_size": [64, 64]}


def _spec(method: str = "oasis", train: dict | None = None, **extra):
    return spec_from_dict({"name": "r", "method": method, "train": train or {}, **extra})


def test_the_recipe_fills_what_the_spec_does_not_set() -> None:
    spec = _spec(train={"lr_d": 1e-4, "batch_size": 4})
    new, record = apply_recipe(spec, "cityscapes", explicit_fields(spec))
    # OASIS's Cityscapes G rate, its constant schedule; the spec's D rate and batch win.
    assert (new.train.lr_g, new.train.lr_decay_epochs) == (4e-4, 0)
    assert (new.train.lr_d, new.train.batch_size) == (1e-4, 4)
    values = record["values"]
    assert values["train.lr_g"] == {
        "value": 4e-4, "recipe_value": 4e-4, "source": "oasis/config.py:82", "from": "recipe"
    }  # fmt: skip
    assert values["train.lr_d"]["from"] == values["train.batch_size"]["from"] == "spec"
    assert (record["recipe"], record["table"]) == ("official", "cityscapes")
    assert recipe_summary(record).startswith("official (oasis, cityscapes): ")


def test_a_spec_value_equal_to_the_default_still_wins() -> None:
    # Explicitness is what the file says, not a comparison with the default.
    spec = _spec(train={"lr_g": 1e-4})
    new, record = apply_recipe(spec, "cityscapes", explicit_fields(spec))
    assert new.train.lr_g == 1e-4 and record["values"]["train.lr_g"]["from"] == "spec"


def test_a_search_value_wins_and_is_recorded_as_the_search() -> None:
    spec = _spec()
    new, record = apply_recipe(spec, "cityscapes", explicit_fields(spec), {"train.lr_g"})
    assert new.train.lr_g == spec.train.lr_g and record["values"]["train.lr_g"]["from"] == "search"


def test_a_spec_setting_the_epochs_keeps_its_own_schedule() -> None:
    spec = _spec("scgan", train={"epochs": 2})
    new, record = apply_recipe(spec, "ade20k", explicit_fields(spec))
    # Not SC-GAN's 100 decay epochs of 200 on a 2-epoch run: the spec's schedule entirely.
    assert (new.train.epochs, new.train.lr_decay_epochs) == (2, None)
    assert record["values"]["train.lr_decay_epochs"]["from"] == "spec"
    assert new.train.batch_size == 16  # the rest of the recipe still applies


def test_paper_and_none() -> None:
    spec = _spec("spade", train={"recipe": "paper"})
    new, record = apply_recipe(spec, "cityscapes", explicit_fields(spec))
    assert (new.train.betas, new.train.epochs, new.train.lr_decay_epochs) == (
        (0.0, 0.999),
        200,
        100,
    )
    assert record["values"]["train.betas"]["source"].startswith("SPADE paper §4")
    official, _ = apply_recipe(_spec("spade"), "cityscapes", frozenset())
    assert (official.train.betas, official.train.epochs) == ((0.0, 0.9), 50)
    spec = _spec("spade", train={"recipe": "none"})
    new, record = apply_recipe(spec, "cityscapes", explicit_fields(spec))
    assert new == spec and record["values"] == {}


def test_model_values_are_recorded_from_the_model_section() -> None:
    spec = _spec(model={"preset": "cityscapes", "labelmix_weight": 7.0})
    _, record = apply_recipe(spec, "cityscapes", explicit_fields(spec))
    assert record["values"]["model.ema_decay"]["from"] == "model"
    assert record["values"]["model.labelmix_weight"] == {
        "value": 7.0, "recipe_value": 5.0, "source": "oasis/config.py:83", "from": "spec"
    }  # fmt: skip


def test_the_recipe_reaches_the_trainers_optimisers() -> None:
    from sislab.orchestrator.trial import trial_spec_with_recipe
    from sislab.trainers import build

    spec = spec_from_dict(
        {
            "name": "r",
            "method": "spade",
            "dataset": SYNTHETIC,
            "model": {"ngf": 4, "ndf": 4, "num_d": 1, "n_layers_d": 2},
            "train": {"epochs": 1, "batch_size": 2, "lr_d": 3e-4},
            "losses": {"perceptual": 0.0},
            "resources": {"num_workers": 1},
        }
    )
    # As a trial receives it: the sweep's spec dumped (every field looks set), the file's
    # explicit fields beside it.
    trial, record = trial_spec_with_recipe(spec.model_dump(mode="json"), {}, explicit_fields(spec))
    assert record["table"] == "generic" and record["values"]["train.betas"]["from"] == "recipe"
    geometry = build.dataset_geometry(trial)
    procedure, _ = build.build_procedure(trial, geometry, torch.device("cpu"), 1, lambda m: m)
    (group_g,), (group_d,) = procedure.opt_g.param_groups, procedure.opt_d.param_groups
    assert group_g["betas"] == (0.0, 0.9)  # SPADE's code, not sislab's default 0.999
    assert (group_g["lr"], group_d["lr"]) == (1e-4, 3e-4)  # the spec's lr_d wins


def test_recipe_show_prints_values_with_sources(capsys: pytest.CaptureFixture) -> None:
    assert main(["recipe", "show", "oasis", "--dataset", "cityscapes"]) == 0
    out = capsys.readouterr().out
    assert "oasis on cityscapes: recipe official (cityscapes table)" in out
    for line in (
        "train.lr_g             0.0004        oasis/config.py:82",
        "train.lr_d             0.0004        oasis/config.py:63",
        "model.labelmix_weight  5.0           oasis/config.py:83",
        "model.ema_decay        0.999         oasis/config.py:85",
        "model.ignore_class     0             oasis/dataloaders/CityscapesDataset.py:12",
    ):
        assert line in out, line
    assert (
        main(["recipe", "show", "spade", "--dataset", "ade20k", "--recipe", "paper", "--json"]) == 0
    )
    data = json.loads(capsys.readouterr().out)
    betas = next(r for r in data["values"] if r["field"] == "train.betas")
    assert betas["value"] == [0.0, 0.999] and betas["official"]["value"] == [0.0, 0.9]
    assert main(["recipe", "show", "oasis", "--dataset", "cityscape"]) == 2
    assert "cityscapes" in capsys.readouterr().err
