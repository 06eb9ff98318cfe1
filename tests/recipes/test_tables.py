"""Every recipe value, pinned: the official code's (read at the cited file:line of the official
repositories) and the paper's where its text differs."""

from __future__ import annotations

import re

import pytest

from sislab.models.presets import OASIS_DATASETS, SCGAN_DATASETS
from sislab.models.registry import METHODS
from sislab.recipes.tables import RECIPES, recipe_values
from sislab.recipes.values import SAME

# TTUR of SPADE's code: --lr 2e-4 -> G 1e-4, D 4e-4; its losses: FM 10, VGG 10, KL 0.05.
SPADE_CODE = {
    "train.lr_g": 1e-4,
    "train.lr_d": 4e-4,
    "train.betas": (0.0, 0.9),
    "losses.feat_match": 10.0,
    "losses.perceptual": 10.0,
    "losses.kl": 0.05,
}
SPADE_SCHEDULE = {"train.epochs": 50, "train.lr_decay_epochs": 0}
OASIS_CODE = {
    "train.lr_g": 1e-4,
    "train.lr_d": 4e-4,
    "train.betas": (0.0, 0.999),
    "train.epochs": 200,
    "train.lr_decay_epochs": 0,
    "losses.perceptual": 10.0,
    "model.use_vgg_loss": False,
    "model.labelmix_weight": 10.0,
    "model.ema_decay": 0.9999,
}
OASIS_CITY = {"train.lr_g": 4e-4, "model.labelmix_weight": 5.0, "model.ema_decay": 0.999}
SCGAN_CODE = {**SPADE_CODE, "train.betas": (0.0, 0.999)}
SCGAN_YML = {"train.epochs": 200, "train.lr_decay_epochs": 100, "train.batch_size": 16}

OFFICIAL: dict[tuple[str, str], dict] = {
    ("spade", "generic"): SPADE_CODE,
    ("spade", "cityscapes"): {**SPADE_CODE, **SPADE_SCHEDULE, "train.batch_size": 16},
    ("spade", "ade20k"): {**SPADE_CODE, **SPADE_SCHEDULE},
    ("spade", "coco-stuff"): {**SPADE_CODE, **SPADE_SCHEDULE},
    **{
        (clade, dataset): SPADE_CODE if dataset == "generic" else {**SPADE_CODE, **SPADE_SCHEDULE}
        for clade in ("clade", "clade-icpe")
        for dataset in ("generic", "cityscapes", "ade20k", "coco-stuff")
    },
    **{
        (va, dataset): {**SPADE_CODE, **extra}
        for va in ("va-spade", "va-clade")
        for dataset, extra in {
            "generic": {},
            "cityscapes": {
                "train.epochs": 200,
                "train.lr_decay_epochs": 100,
                "train.batch_size": 16,
            },
            "ade20k": {"train.epochs": 300, "train.lr_decay_epochs": 150, "train.batch_size": 32},
            "coco-stuff": {"train.epochs": 150, "train.lr_decay_epochs": 0, "train.batch_size": 28},
        }.items()
    },
    ("oasis", "generic"): OASIS_CODE,
    ("oasis", "cityscapes"): {
        **OASIS_CODE,
        **OASIS_CITY,
        "train.batch_size": 20,
        "model.ignore_class": 0,
    },
    ("oasis", "ade20k"): {**OASIS_CODE, "train.batch_size": 32, "model.ignore_class": 150},
    ("oasis", "coco-stuff"): {
        **OASIS_CODE,
        "train.epochs": 100,
        "train.batch_size": 32,
        "model.ignore_class": 182,
    },
    ("va-oasis", "generic"): OASIS_CODE,
    ("va-oasis", "cityscapes"): {
        **OASIS_CODE,
        **OASIS_CITY,
        "train.batch_size": 16,
        "model.ignore_class": 0,
    },
    ("va-oasis", "ade20k"): {
        **OASIS_CODE,
        "train.epochs": 300,
        "train.batch_size": 24,
        "model.ignore_class": 150,
    },
    ("va-oasis", "coco-stuff"): {
        **OASIS_CODE,
        "train.epochs": 150,
        "train.batch_size": 24,
        "model.ignore_class": 182,
    },
    ("scgan", "generic"): SCGAN_CODE,
    ("scgan", "ade20k"): {**SCGAN_CODE, **SCGAN_YML, "model.svg_loss_weight": 2.0},
    ("scgan", "cityscapes"): {**SCGAN_CODE, **SCGAN_YML, "model.svg_loss_weight": 2.0},
    ("scgan", "coco-stuff"): {**SCGAN_CODE, **SCGAN_YML, "model.svg_loss_weight": 2.0},
    ("scgan", "celebamask-hq"): {
        **SCGAN_CODE,
        "train.epochs": 100,
        "train.lr_decay_epochs": 50,
        "train.batch_size": 8,
        "model.svg_loss_weight": 1.0,
    },
    ("groupdnet", "generic"): SPADE_CODE,  # smis_model.py hard-codes (0, 0.9) under TTUR
    ("groupdnet", "deepfashion"): {
        **SPADE_CODE,
        "train.epochs": 100,
        "train.lr_decay_epochs": 40,
        "train.batch_size": 8,
    },
    ("groupdnet", "cityscapes"): {
        **SPADE_CODE,
        "train.epochs": 200,
        "train.lr_decay_epochs": 100,
        "train.batch_size": 4,
    },
    ("groupdnet", "ade20k"): {
        **SPADE_CODE,
        "train.epochs": 200,
        "train.lr_decay_epochs": 100,
        "train.batch_size": 4,
    },
}

_SPADE_PAPER_EPOCHS = {"train.epochs": 200, "train.lr_decay_epochs": 100}
PAPER: dict[tuple[str, str], dict] = {
    **{
        (m, d): {"train.betas": (0.0, 0.999), **(_SPADE_PAPER_EPOCHS if d in e else {})}
        for m, e in {
            "spade": ("cityscapes", "ade20k"),
            "clade": ("cityscapes", "ade20k"),
            "clade-icpe": ("cityscapes", "ade20k"),
            "va-spade": ("ade20k",),
            "va-clade": ("ade20k",),
        }.items()
        for d in ("generic", "cityscapes", "ade20k", "coco-stuff")
    },
    ("va-oasis", "ade20k"): {"train.epochs": 200},
    ("va-oasis", "coco-stuff"): {"train.epochs": 100},
    ("scgan", "coco-stuff"): {"train.epochs": 100, "train.lr_decay_epochs": 0},
    ("groupdnet", "deepfashion"): {"train.batch_size": 32},
    ("groupdnet", "cityscapes"): {"train.batch_size": 32},
    ("groupdnet", "ade20k"): {"train.batch_size": 16},
}


def test_every_registered_method_has_a_recipe_and_every_table_is_pinned() -> None:
    assert set(RECIPES) == set(METHODS)
    assert {(m, d) for m, tables in RECIPES.items() for d in tables} == set(OFFICIAL)


@pytest.mark.parametrize(("method", "dataset"), sorted(OFFICIAL))
def test_recipe_values(method: str, dataset: str) -> None:
    values = recipe_values(method, None if dataset == "generic" else dataset)
    assert {v.field: v.official for v in values} == OFFICIAL[(method, dataset)]
    paper = {v.field: v.paper for v in values if v.paper is not SAME}
    assert paper == PAPER.get((method, dataset), {})
    assert {v.field: v.value("paper") for v in values} == {**OFFICIAL[(method, dataset)], **paper}
    for value in values:
        # Every official value cites a file and line of the official checkout; a paper value
        # cites the paper.
        assert re.search(r"^[\w./-]+\.(py|sh|yml):\d", value.source), value
        assert value.paper is SAME or "paper" in value.paper_source, value


def test_a_dataset_without_a_table_gets_the_generic_values() -> None:
    assert recipe_values("oasis", "synthetic") == recipe_values("oasis", None)
    assert {v.field for v in recipe_values("spade", "deepfashion")} == set(SPADE_CODE)
    assert recipe_values("nope", "cityscapes") == []


@pytest.mark.parametrize(
    ("method", "datasets"),
    [
        ("oasis", OASIS_DATASETS),
        ("va-oasis", OASIS_DATASETS),
        ("scgan", SCGAN_DATASETS),
    ],
)
def test_model_values_are_the_model_presets(method: str, datasets: dict) -> None:
    """The recipe's model.* values are applied by the model's preset: the two must agree."""
    for dataset, preset in datasets.items():
        model = METHODS[method].config.model_validate({"preset": preset})
        for value in recipe_values(method, dataset):
            if value.field.startswith("model."):
                assert getattr(model, value.field[6:]) == value.official, (dataset, value)
