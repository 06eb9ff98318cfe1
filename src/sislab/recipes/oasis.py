"""Recipes of OASIS (boschresearch/OASIS) and VA-OASIS (xml94/VASIS ``VA-OASIS``).

Both ``config.py`` files set Adam (0, 0.999), G 1e-4 / D 4e-4 and 200 epochs at a constant
learning rate (``train.py`` builds the optimisers and never decays them), and per dataset
(``set_dataset_default_lm``) the LabelMix weight, the EMA decay, Cityscapes' G learning rate 4e-4
and COCO's 100 epochs. Every OASIS loader sets ``contain_dontcare_label``: the loss weights of
the don't-care class are zeroed (``models/losses.py:33,38``); sislab's converters put that class
at index 0 on Cityscapes (labelIds' ``unlabeled``) and last on ADE20K (150) and COCO-Stuff (182).
The ``model.*`` values are applied by the model's ``preset`` (``OASIS_PRESETS``), and a test pins
that the two agree.
"""

from __future__ import annotations

from sislab.recipes.values import GENERIC, RecipeValue

VASIS_PAPER = "VASIS paper §4 'Implementation details': the compared methods' epochs"


def _tables(repo: str, cfg: dict[str, str], batches: dict[str, tuple[int, str]], epochs: dict):
    """``cfg``: the line of each option in ``repo/config.py``."""
    config = f"{repo}/config.py"
    generic = (
        RecipeValue("train.lr_g", 1.0e-4, f"{config}:{cfg['lr_g']}"),
        RecipeValue("train.lr_d", 4.0e-4, f"{config}:{cfg['lr_d']}"),
        RecipeValue("train.betas", (0.0, 0.999), f"{config}:{cfg['betas']}"),
        RecipeValue("train.epochs", 200, f"{config}:{cfg['epochs']}"),
        RecipeValue(
            "train.lr_decay_epochs", 0, f"{repo}/train.py:28-29 (Adam, no scheduler: constant lr)"
        ),
        RecipeValue("losses.perceptual", 10.0, f"{config}:{cfg['lambda_vgg']} (lambda_vgg)"),
        RecipeValue("model.use_vgg_loss", False, f"{config}:{cfg['add_vgg']} (--add_vgg_loss)"),
        RecipeValue("model.labelmix_weight", 10.0, f"{config}:{cfg['labelmix']}"),
        RecipeValue("model.ema_decay", 0.9999, f"{config}:{cfg['ema']}"),
    )
    dontcare = {"cityscapes": 0, "ade20k": 150, "coco-stuff": 182}
    loader = {
        "cityscapes": "CityscapesDataset.py:12",
        "ade20k": "Ade20kDataset.py:17",
        "coco-stuff": "CocoStuffDataset.py:16",
    }
    tables = {GENERIC: generic}
    for dataset, lines in cfg["datasets"].items():
        values = tuple(
            RecipeValue(field, value, f"{config}:{lines[field]}")
            for field, value in epochs[dataset].items()
        )
        batch, batch_source = batches[dataset]
        values += (
            RecipeValue("train.batch_size", batch, f"{repo}/{batch_source}"),
            RecipeValue(
                "model.ignore_class",
                dontcare[dataset],
                f"{repo}/dataloaders/{loader[dataset]} (contain_dontcare_label), "
                f"{repo}/models/losses.py:33,38",
            ),
        )
        tables[dataset] = values
    return tables


# The dataset defaults of OASIS's config.py, which VA-OASIS's repeats value for value (their lines
# differ: each table names its own).
_DATASET_VALUES = {
    "ade20k": {"model.labelmix_weight": 10.0, "model.ema_decay": 0.9999},
    "cityscapes": {"train.lr_g": 4.0e-4, "model.labelmix_weight": 5.0, "model.ema_decay": 0.999},
    "coco-stuff": {"model.labelmix_weight": 10.0, "model.ema_decay": 0.9999, "train.epochs": 100},
}

OASIS = _tables(
    "oasis",
    {
        "lr_g": "62",
        "lr_d": "63",
        "betas": "60-61",
        "epochs": "59",
        "lambda_vgg": "67",
        "add_vgg": "66",
        "labelmix": "70",
        "ema": "46",
        "datasets": {
            "ade20k": {"model.labelmix_weight": 79, "model.ema_decay": 80},
            "cityscapes": {"train.lr_g": 82, "model.labelmix_weight": 83, "model.ema_decay": 85},
            "coco-stuff": {"model.labelmix_weight": 87, "model.ema_decay": 88, "train.epochs": 89},
        },
    },
    {
        "ade20k": (32, "scripts/train_ade20k.sh:2"),
        "cityscapes": (20, "scripts/train_cityscapes.sh:2"),
        "coco-stuff": (32, "scripts/train_coco.sh:2"),
    },
    _DATASET_VALUES,
)


def _with(tables: dict, dataset: str, *values: RecipeValue) -> dict:
    """``tables`` with ``values`` replacing (or added to) the dataset's."""
    fields = {v.field for v in values}
    kept = tuple(v for v in tables[dataset] if v.field not in fields)
    return {**tables, dataset: kept + values}


# VA-OASIS's config.py is OASIS's with four more lines before the training options; its
# training scripts set the batch sizes and ADE20K's and COCO's epochs of the paper's runs.
_VA = "vasis/VA-OASIS"
VA_OASIS = _tables(
    _VA,
    {
        "lr_g": "66",
        "lr_d": "67",
        "betas": "64-65",
        "epochs": "63",
        "lambda_vgg": "72",
        "add_vgg": "71",
        "labelmix": "77",
        "ema": "49",
        "datasets": {
            "ade20k": {"model.labelmix_weight": 86, "model.ema_decay": 87},
            "cityscapes": {"train.lr_g": 89, "model.labelmix_weight": 90, "model.ema_decay": 91},
            "coco-stuff": {"model.labelmix_weight": 93, "model.ema_decay": 94, "train.epochs": 95},
        },
    },
    {
        "ade20k": (24, "scripts/train_ade20k.sh:2"),
        "cityscapes": (16, "scripts/train_cityscapes.sh:14"),
        "coco-stuff": (24, "scripts/train_coco.sh:2"),
    },
    _DATASET_VALUES,
)
VA_OASIS = _with(
    VA_OASIS,
    "ade20k",
    RecipeValue(
        "train.epochs", 300, f"{_VA}/scripts/train_ade20k.sh:3", 200, f"{VASIS_PAPER} (OASIS: 200)"
    ),
)
VA_OASIS = _with(
    VA_OASIS,
    "coco-stuff",
    RecipeValue(
        "train.epochs", 150, f"{_VA}/scripts/train_coco.sh:3", 100, f"{VASIS_PAPER} (OASIS: 100)"
    ),
)
