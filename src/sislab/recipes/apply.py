"""Applying a recipe to a trial's spec, and the record of where each value came from.

Precedence: a value the user set in the spec file (or a search sets for the trial) wins over the
recipe, the recipe over the field's default. What the user set is what pydantic recorded while
validating the file (``model_fields_set`` of ``train`` and ``losses``), never a comparison with
the defaults: ``lr_g: 1e-4`` written in the file wins over a recipe's 4e-4. ``epochs`` and
``lr_decay_epochs`` are one schedule: a spec that sets either keeps its own and takes neither
from the recipe. ``model.*`` values are applied by the method's ``preset`` (OASIS_PRESETS,
SCGAN_PRESETS, whose fields set explicitly win too); the record says whether the trial's value is
the recipe's. Pure functions, no Ray or MLflow.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sislab.recipes.tables import recipe_values, table_name
from sislab.spec.overrides import resolve
from sislab.spec.spec import Spec

RECIPE_ARTIFACT = "config/recipe.json"
SCHEDULE_FIELDS = ("train.epochs", "train.lr_decay_epochs")
# Sections whose user-set fields are read from the spec as loaded (model: see the docstring).
SECTIONS = ("train", "losses")


def explicit_fields(spec: Spec) -> frozenset[str]:
    """Dotted ``train.*``/``losses.*`` fields the spec's author set.

    Call it on the spec as validated from the file (``load_spec``, ``check_before_run``): a spec
    dumped and validated again counts every field as set.
    """
    return frozenset(
        f"{section}.{name}"
        for section in SECTIONS
        for name in getattr(spec, section).model_fields_set
    )


def _lookup(spec: Spec, field: str) -> Any:
    value: Any = spec
    for part in field.split("."):
        value = getattr(value, part, None)
    return list(value) if isinstance(value, tuple) else value


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def apply_recipe(
    spec: Spec, dataset: str | None, explicit: Iterable[str], overridden: Iterable[str] = ()
) -> tuple[Spec, dict[str, Any]]:
    """``spec`` with its ``train.recipe``'s values where neither the user nor the search set one.

    Args:
        spec: The trial's spec (overrides applied).
        dataset: The dataset's preset name (``models.presets.dataset_name``), or None.
        explicit: Dotted fields the spec file set (``explicit_fields`` of the loaded spec).
        overridden: Dotted fields the trial's search configuration set.

    Returns:
        ``(spec, record)``: the new spec and, for ``config/recipe.json``, the recipe, method,
        dataset, table used and per field its value, the recipe's value, source and origin
        (``recipe``; ``spec``, ``search``: they set it; ``model``: the model section, preset or
        default, holds the recipe's value).

    Raises:
        SpecError: The recipe's values give an invalid spec (e.g. against a value of the user's).
    """
    recipe = spec.train.recipe
    explicit, overridden = set(explicit), set(overridden)
    values = [] if recipe == "none" else recipe_values(spec.method, dataset)
    keep_schedule = bool((explicit | overridden) & set(SCHEDULE_FIELDS))
    updates: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for value in values:
        field = value.field
        if field in overridden:
            origin[field] = "search"
        elif field.startswith("model."):
            same = _lookup(spec, field) == _plain(value.value(recipe))
            origin[field] = "model" if same else "spec"
        elif field in explicit or (field in SCHEDULE_FIELDS and keep_schedule):
            origin[field] = "spec"
        else:
            updates[field] = _plain(value.value(recipe))
            origin[field] = "recipe"
    new = resolve(spec, updates) if updates else spec
    record = {
        "recipe": recipe,
        "method": spec.method,
        "dataset": dataset,
        "table": table_name(spec.method, dataset),
        "values": {
            v.field: {
                "value": _lookup(new, v.field),
                "recipe_value": _plain(v.value(recipe)),
                "source": v.source_of(recipe),
                "from": origin[v.field],
            }
            for v in values
        },
    }
    return new, record


def recipe_summary(record: dict[str, Any]) -> str:
    """One line for the run's ``sislab.recipe`` tag: the recipe and how many values it set."""
    counts: dict[str, int] = {}
    for entry in record["values"].values():
        counts[entry["from"]] = counts.get(entry["from"], 0) + 1
    parts = ", ".join(f"{n} from {origin}" for origin, n in sorted(counts.items()))
    return f"{record['recipe']} ({record['method']}, {record['table']}): {parts or 'no values'}"
