"""Recipes of the SPADE-code family: SPADE, CLADE (and CLADE-ICPE), VA-SPADE and VA-CLADE.

All four repositories keep SPADE's ``options/train_options.py``: ``--lr`` 2e-4 split by TTUR,
Adam (0, 0.9), feature matching and VGG 10, KL 0.05, ``--niter 50 --niter_decay 0``, batch 1
(a dataset module may set its own, e.g. Cityscapes 16). VASIS's training scripts set the epochs
and batch sizes its paper trained with. The papers state Adam (0, 0.999) and 200 epochs with a
linear decay over the last 100 (SPADE's settings, restated by the SMIS paper's Appendix A).
"""

from __future__ import annotations

from sislab.recipes.values import GENERIC, RecipeValue, schedule, ttur

SPADE_PAPER = "SPADE paper §4 'Implementation details' (Adam β1=0, β2=0.999)"
SPADE_EPOCHS = "SMIS paper Appendix A: SPADE's settings, 200 epochs, linear decay from 100 to 200"


def _losses(repo: str, feat: str, vgg: str, kld: str) -> tuple[RecipeValue, ...]:
    return (
        RecipeValue("losses.feat_match", 10.0, f"{repo}/{feat}"),
        RecipeValue("losses.perceptual", 10.0, f"{repo}/{vgg}"),
        RecipeValue("losses.kl", 0.05, f"{repo}/{kld}"),
    )


def _paper_betas(values: tuple[RecipeValue, ...], paper_source: str) -> tuple[RecipeValue, ...]:
    return tuple(
        RecipeValue(v.field, v.official, v.source, (0.0, 0.999), paper_source)
        if v.field == "train.betas"
        else v
        for v in values
    )


def _paper_epochs(values: tuple[RecipeValue, ...], source: str) -> tuple[RecipeValue, ...]:
    paper = {"train.epochs": 200, "train.lr_decay_epochs": 100}
    return tuple(
        RecipeValue(v.field, v.official, v.source, paper[v.field], source)
        if v.field in paper
        else v
        for v in values
    )


def _code_family(repo: str, ttur_file: str, city_batch: str | None) -> dict:
    """SPADE's options as ``repo`` keeps them (same line numbers in all three)."""
    options = "options/train_options.py"
    generic = _paper_betas(
        ttur(repo, f"{options}:36", ttur_file, (0.0, 0.9), f"{options}:27-28"), SPADE_PAPER
    ) + _losses(repo, f"{options}:41", f"{options}:42", f"{options}:47")
    code_schedule = schedule(50, 0, f"{repo}/{options}:24-25 (niter, niter_decay)")
    tables = {GENERIC: generic}
    for dataset in ("cityscapes", "ade20k", "coco-stuff"):
        values = code_schedule
        if dataset != "coco-stuff":
            values = _paper_epochs(values, SPADE_EPOCHS)
        if dataset == "cityscapes" and city_batch:
            values += (RecipeValue("train.batch_size", 16, f"{repo}/{city_batch}"),)
        tables[dataset] = values
    return tables


SPADE = _code_family("spade", "models/pix2pix_model.py:73", "data/cityscapes_dataset.py:22")

# CLADE's train_options.py is SPADE's shifted by one line from --lr on.
_CLADE_OPTIONS = "options/train_options.py"
CLADE = {
    GENERIC: _paper_betas(
        ttur(
            "clade",
            f"{_CLADE_OPTIONS}:37",
            "models/pix2pix_model.py:85",
            (0.0, 0.9),
            f"{_CLADE_OPTIONS}:27-28",
        ),
        f"CLADE trains as SPADE (methods/clade.md:50); {SPADE_PAPER}",
    )
    + _losses("clade", f"{_CLADE_OPTIONS}:42", f"{_CLADE_OPTIONS}:43", f"{_CLADE_OPTIONS}:48"),
    **{
        dataset: (
            _paper_epochs(
                schedule(50, 0, f"clade/{_CLADE_OPTIONS}:24-25 (niter, niter_decay)"),
                SPADE_EPOCHS,
            )
            if dataset != "coco-stuff"
            else schedule(50, 0, f"clade/{_CLADE_OPTIONS}:24-25 (niter, niter_decay)")
        )
        for dataset in ("cityscapes", "ade20k", "coco-stuff")
    },
}

_VASIS = "vasis/VASIS"
_VASIS_OPTIONS = "options/train_options.py"
VASIS_PAPER = "VASIS paper §4 'Implementation details': SPADE's/CLADE's recipe"
VASIS = {
    GENERIC: _paper_betas(
        ttur(
            _VASIS,
            f"{_VASIS_OPTIONS}:37",
            "models/pix2pix_model.py:140",
            (0.0, 0.9),
            f"{_VASIS_OPTIONS}:27-28",
        ),
        f"{VASIS_PAPER}; {SPADE_PAPER}",
    )
    + _losses(_VASIS, f"{_VASIS_OPTIONS}:42", f"{_VASIS_OPTIONS}:43", f"{_VASIS_OPTIONS}:48"),
    # The training scripts of the paper's runs (scripts/*_train.sh: niter, niter_decay, batch).
    "cityscapes": schedule(
        200,
        100,
        f"{_VASIS}/scripts/city_train.sh:6-7 (niter 100, niter_decay 100)",
        16,
        f"{_VASIS}/scripts/city_train.sh:13",
    ),
    "ade20k": _paper_epochs(
        schedule(
            300,
            150,
            f"{_VASIS}/scripts/ade20k_train.sh:17-18 (niter 150, niter_decay 150)",
            32,
            f"{_VASIS}/scripts/ade20k_train.sh:16",
        ),
        f"{VASIS_PAPER}; {SPADE_EPOCHS}",
    ),
    "coco-stuff": schedule(
        150,
        0,
        f"{_VASIS}/scripts/coco_train.sh:17-18 (niter 150, niter_decay 0)",
        28,
        f"{_VASIS}/scripts/coco_train.sh:16",
    ),
}
