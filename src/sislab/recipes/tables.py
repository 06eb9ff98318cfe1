"""Every method's recipe tables, by registry name, and the merged values for one dataset."""

from __future__ import annotations

from sislab.recipes.groupdnet import GROUPDNET
from sislab.recipes.oasis import OASIS, VA_OASIS
from sislab.recipes.scgan import SCGAN
from sislab.recipes.spade_family import CLADE, SPADE, VASIS
from sislab.recipes.values import GENERIC, RecipeValue

# Method (registry name) -> table name (GENERIC or a DATASET_PRESETS name) -> values.
RECIPES: dict[str, dict[str, tuple[RecipeValue, ...]]] = {
    "spade": SPADE,
    "clade": CLADE,
    "clade-icpe": CLADE,  # CLADE's repository trains ICPE with the same options
    "va-spade": VASIS,
    "va-clade": VASIS,
    "va-oasis": VA_OASIS,
    "oasis": OASIS,
    "scgan": SCGAN,
    "groupdnet": GROUPDNET,
}


def table_name(method: str, dataset: str | None) -> str:
    """The table a dataset uses: its own where the official code has one, else ``generic``."""
    return dataset if dataset in RECIPES.get(method, {}) and dataset != GENERIC else GENERIC


def recipe_values(method: str, dataset: str | None) -> list[RecipeValue]:
    """A method's values on ``dataset``: the generic ones, replaced or extended by the dataset's.

    Args:
        method: A registered method name.
        dataset: A ``DATASET_PRESETS`` name (``cityscapes``...); None or one without a table of
            its own: the generic values only.

    Returns:
        One value per field, generic fields first, in table order.
    """
    tables = RECIPES.get(method, {})
    merged = {v.field: v for v in tables.get(GENERIC, ())}
    name = table_name(method, dataset)
    if name != GENERIC:
        merged.update({v.field: v for v in tables[name]})
    return list(merged.values())
