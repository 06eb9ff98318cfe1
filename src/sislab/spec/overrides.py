"""Dotted overrides (``{"train.lr_g": 2e-4}``) applied to spec data, and a re-validated spec.

This is how a Tune trial's sampled values become that trial's spec.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import ValidationError

from sislab.errors import SpecError
from sislab.spec.problems import dotted, validation_problems
from sislab.spec.spec import DEFAULT_METHOD, Spec


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Return a deep copy of ``data`` with each dotted key set to its value.

    Missing intermediate mappings are created (validation reports unknown names afterwards).

    Args:
        data: Nested spec data (as loaded from YAML or ``Spec.model_dump()``).
        overrides: Dotted field path -> value, e.g. ``{"model.ngf": 32}``.

    Returns:
        The new nested data; ``data`` is untouched.

    Raises:
        SpecError: A key is empty or passes through a value that is not a mapping.
    """
    result = copy.deepcopy(data)
    for key, value in overrides.items():
        parts = str(key).split(".")
        if not all(parts):
            raise SpecError(
                f"override {key!r}: not a dotted field path", fix="Use e.g. train.lr_g."
            )
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise SpecError(
                    f"override {key!r}: {where} is a value ({child!r}), not a section",
                    fix=f"Override {where} itself, or name a field of a section.",
                )
            node = child
        node[parts[-1]] = copy.deepcopy(value)
    return result


def resolve(spec: Spec, overrides: dict[str, Any]) -> Spec:
    """Return ``spec`` with the overrides applied, validated again.

    Runs on the Tune driver or a trial: ``overrides`` is the trial's sampled config.

    Args:
        spec: A validated spec.
        overrides: Dotted field path -> value.

    Returns:
        The new spec (``spec`` itself is unchanged; specs are frozen).

    Raises:
        SpecError: The result is invalid; each problem names the override's dotted key.
    """
    # Imported here: checks imports this module (it validates search values as overrides).
    from sislab.spec.checks import cross_field_problems

    data = apply_overrides(spec.model_dump(), overrides)
    try:
        new = Spec.model_validate(data)
        problems = cross_field_problems(new)
    except ValidationError as exc:
        method = data.get("method") if isinstance(data.get("method"), str) else DEFAULT_METHOD
        problems = validation_problems(exc, Spec, method)
    if not problems:
        return new
    lines = [
        f"override {_override_key(path, overrides)}: {dotted(path)}: {message}"
        for path, message in problems
    ]
    raise SpecError(
        "invalid override: " + "; ".join(lines),
        fix="Change the overridden values (or the search space they come from).",
        problems=lines,
    )


def _override_key(path: tuple, overrides: dict[str, Any]) -> str:
    # The override that touches this path (the longest dotted prefix in either direction).
    name = dotted(path)
    matches = [
        k for k in overrides if name == k or name.startswith(f"{k}.") or k.startswith(f"{name}.")
    ]
    if matches:
        return ", ".join(repr(k) for k in matches)
    return "(" + ", ".join(repr(k) for k in overrides) + ")" if overrides else "(none)"
