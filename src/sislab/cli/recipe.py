"""``sislab recipe show``: a method's training recipe on a dataset, each value with its source."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    """Add the recipe command."""
    recipe = sub.add_parser("recipe", help="official and paper training recipes per dataset")
    recipe_sub = recipe.add_subparsers(dest="recipe", required=True, metavar="ACTION")
    show = recipe_sub.add_parser("show", help="a method's recipe on a dataset, with sources")
    show.add_argument("method")
    show.add_argument("--dataset", default="synthetic", help="dataset preset (default: synthetic)")
    show.add_argument("--recipe", choices=("official", "paper"), default="official")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.set_defaults(handler=_show)


def recipe_rows(method: str, dataset: str, recipe: str) -> list[dict]:
    """The rows ``sislab recipe show`` prints: field, value, source, and the other recipe's value
    where the paper differs.

    Raises:
        SpecError: Unknown method or dataset (the fix names the registered ones).
    """
    from sislab.datasets.presets import preset_geometry
    from sislab.models.registry import get_method
    from sislab.recipes.tables import recipe_values
    from sislab.recipes.values import SAME

    get_method(method)
    preset_geometry(dataset)
    rows = []
    for value in recipe_values(method, dataset):
        row = {
            "field": value.field,
            "value": value.value(recipe),
            "source": value.source_of(recipe),
        }
        if value.paper is not SAME:
            other = "official" if recipe == "paper" else "paper"
            row[other] = {"value": value.value(other), "source": value.source_of(other)}
        rows.append(row)
    return rows


def _text(value) -> str:
    return str(list(value)) if isinstance(value, tuple) else str(value)


def _show(args: argparse.Namespace) -> int:
    from sislab.recipes.tables import table_name

    rows = recipe_rows(args.method, args.dataset, args.recipe)
    table = table_name(args.method, args.dataset)
    if args.json:
        data = {"method": args.method, "dataset": args.dataset, "recipe": args.recipe,
                "table": table, "values": rows}  # fmt: skip
        print(json.dumps(data, default=list))
        return 0
    print(f"{args.method} on {args.dataset}: recipe {args.recipe} ({table} table)")
    width = max(len(r["field"]) for r in rows)
    vwidth = max(len(_text(r["value"])) for r in rows)
    for row in rows:
        line = f"  {row['field']:<{width}}  {_text(row['value']):<{vwidth}}  {row['source']}"
        for other in ("paper", "official"):
            if other in row:
                line += f"  [{other}: {_text(row[other]['value'])}, {row[other]['source']}]"
        print(line)
    print(
        "  model.* values are applied by the model's preset (preset: auto follows the dataset); "
        "a value the spec or search sets wins over the recipe."
    )
    return 0
