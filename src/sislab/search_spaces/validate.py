"""``sislab validate`` for conditional, multi-method, suite and repeated searches.

Every configuration the search can yield (sampled domains at their reachable ends) is applied to
the base spec and validated, as a trial would be; problems are ``(path, message)`` pairs at
``search.*``. Plain spaces are checked key by key in ``sislab.spec.checks``.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from sislab.errors import SpecError
from sislab.models.registry import METHODS
from sislab.search_spaces.dsl import CONDITION_KEY
from sislab.search_spaces.space import (
    METHOD_KEY,
    SearchSpace,
    build_space,
    validation_configurations,
)
from sislab.search_spaces.suites import get_suite
from sislab.search_spaces.trial_spec import split_method, switch_method
from sislab.spec.overrides import apply_overrides
from sislab.spec.problems import Problem, dotted, validation_problems
from sislab.spec.spec import Spec, unknown_method_message

MAX_CHECKED = 400  # configurations validated (each ~ms); beyond: a note, not an error
MAX_REPORTED = 10  # configuration problems listed


def is_extended(spec: Spec) -> bool:
    """Whether the search uses conditions, methods, a suite or repeats (checked here)."""
    search = spec.search
    conditional = any(isinstance(r, dict) and CONDITION_KEY in r for r in search.space.values())
    return bool(conditional or search.methods or search.suite or search.repeats > 1)


def space_of(spec: Spec) -> SearchSpace:
    """The spec's :class:`SearchSpace`.

    Raises:
        SpecError: Unknown suite, malformed condition, cyclic conditions.
    """
    search = spec.search
    suite = get_suite(search.suite).configurations if search.suite else None
    return build_space(search.space, search.methods, suite, search.repeats, spec.train.seed)


def _objective_problems(spec: Spec) -> list[Problem]:
    search = spec.search
    metrics = search.metric if isinstance(search.metric, list) else [search.metric]
    problems: list[Problem] = []
    if isinstance(search.mode, list) and len(search.mode) != len(metrics):
        problems.append(
            (
                ("search", "mode"),
                f"{len(search.mode)} modes for {len(metrics)} metrics; give one mode per metric "
                "or a single mode for all",
            )
        )
    if isinstance(search.metric, list) and len(search.metric) < 2:
        problems.append((("search", "metric"), "a list of metrics needs two or more"))
    if search.repeats > 1 and search.algorithm == "optuna":
        problems.append(
            (
                ("search", "repeats"),
                "repeats need algorithm grid or random (Optuna suggests each trial once)",
            )
        )
    return problems


def _config_problems(spec: Spec, config: dict[str, Any]) -> list[Problem]:
    from sislab.spec.checks import cross_field_problems

    method, rest = split_method(config)
    data = spec.model_dump(mode="json")
    if method is not None:
        if method not in METHODS:
            return [((METHOD_KEY,), unknown_method_message(method))]
        data = switch_method(data, method)
    try:
        data = apply_overrides(data, rest)
        return cross_field_problems(Spec.model_validate(data))
    except SpecError as exc:
        return [((), str(exc))]
    except ValidationError as exc:
        return validation_problems(exc, Spec, method or spec.method)


def extended_search_problems(spec: Spec) -> list[Problem]:
    """Problems of a conditional / multi-method / suite search (empty for a plain space)."""
    from sislab.spec.checks import cross_field_problems, search_key_problem

    problems = _objective_problems(spec)
    if not is_extended(spec):
        return problems
    unknown = [m for m in spec.search.methods if m not in METHODS]
    for method in unknown:
        problems.append((("search", "methods", method), unknown_method_message(method)))
    if unknown:
        return problems
    try:
        space = space_of(spec)
    except SpecError as exc:
        where = ("search", "suite") if "suite" in str(exc) else ("search",)
        return [*problems, (where, str(exc).split("\n")[0])]
    methods = list(spec.search.methods) or [spec.method]
    for param in space.params:
        if param.key == METHOD_KEY:
            continue
        branch = param.when.get(METHOD_KEY, ())
        section = ("search", "methods", branch[0]) if "/" in param.name else ("search", "space")
        for method in [m for m in methods if not branch or m in branch]:
            reason = search_key_problem(param.key, method)
            if reason is not None:
                problems.append(((*section, param.key), f"{reason} (method {method})"))
                break
    if problems:
        return problems
    known = set(cross_field_problems(spec))
    configs, complete = validation_configurations(space, MAX_CHECKED)
    seen: set[str] = set()
    for config in configs:
        for where, message in _config_problems(spec, config):
            if (where, message) in known or message in seen:
                continue
            seen.add(message)
            shown = ", ".join(f"{k}={v!r}" for k, v in config.items())
            problems.append(
                (("search",), f"configuration [{shown}] is invalid: {dotted(where)}: {message}")
            )
            if len(seen) >= MAX_REPORTED:
                return problems
    if not complete:
        import logging

        logging.getLogger(__name__).info(
            "search: validated the first %d configurations of a larger space", MAX_CHECKED
        )
    return problems
