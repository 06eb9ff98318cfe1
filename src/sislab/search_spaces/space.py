"""The whole search of a spec as one ordered list of parameters: conditions, methods, suites, seeds.

``search.space`` entries may carry ``when: {KEY: VALUE | [VALUES]}`` (active only when every named
parameter took one of the values); ``search.methods`` makes the method a grid axis whose
sub-spaces are active only for their method; ``search.suite`` adds the suite's configurations as
one grid axis; ``search.repeats`` adds the seed axis ``train.seed = base + r``. The same
:class:`SearchSpace` drives ``sislab search show``, validation, the grid/random searcher and the
Optuna define-by-run space, so what is checked is what runs. Imports no Ray.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import Any

from sislab.errors import SpecError
from sislab.search_spaces.dsl import (
    CONDITION_KEY,
    Choice,
    Domain,
    Grid,
    LogUniform,
    QUniform,
    RandInt,
    Uniform,
    parse_domain,
)

METHOD_KEY = "method"
SUITE_KEY = "suite"  # Optuna's config holds the index of the suite configuration
SEED_KEY = "train.seed"


@dataclass(frozen=True)
class SearchParam:
    """One searched field.

    Args:
        name: Unique name (the key, or ``METHOD/key`` inside a method's sub-space).
        key: Dotted spec field it sets (or ``method``).
        domain: Where its values come from.
        when: Conditions: key -> allowed values; all must hold for the parameter to be active.
    """

    name: str
    key: str
    domain: Domain
    when: dict[str, tuple[Any, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchSpace:
    """Parameters in dependency order (conditions first), suite configurations and repeats."""

    params: tuple[SearchParam, ...]
    suite: tuple[dict[str, Any], ...] = ()
    repeats: int = 1
    base_seed: int = 0

    @property
    def has_random(self) -> bool:
        """Whether any parameter is sampled (not a grid axis)."""
        return any(not isinstance(p.domain, Grid) for p in self.params)


def is_active(param: SearchParam, config: dict[str, Any]) -> bool:
    """Whether every condition of ``param`` holds in the (partial) configuration."""
    return all(key in config and config[key] in values for key, values in param.when.items())


def _condition(raw: Any, where: str) -> dict[str, tuple[Any, ...]]:
    if not isinstance(raw, dict) or not raw:
        raise SpecError(
            f"{where}: when takes a mapping KEY: VALUE or KEY: [VALUES]; got {raw!r}",
            fix="e.g. when: {model.nonlinearity: softmax}",
        )
    return {str(k): tuple(v) if isinstance(v, list) else (v,) for k, v in raw.items()}


def _order(params: list[SearchParam]) -> tuple[SearchParam, ...]:
    # Topological order: a parameter comes after every parameter its conditions name.
    keys = {p.key for p in params}
    problems = [
        f"search.space.{p.key}: condition on {k!r}, which is not searched (conditions name "
        f"searched keys or method)"
        for p in params
        for k in p.when
        if k not in keys
    ]
    if problems:
        raise SpecError("; ".join(problems), fix="Condition on keys of search.space.")
    ordered: list[SearchParam] = []
    placed: set[str] = set()
    pending = list(params)
    while pending:
        ready = [p for p in pending if all(k in placed for k in p.when)]
        if not ready:
            cycle = ", ".join(p.key for p in pending)
            raise SpecError(f"search.space: conditions form a cycle among {cycle}", fix="")
        for p in ready:
            ordered.append(p)
            pending.remove(p)
        placed |= {p.key for p in ready}
    return tuple(ordered)


def build_space(
    space: dict[str, Any],
    methods: dict[str, dict[str, Any]] | None = None,
    suite: list[dict[str, Any]] | None = None,
    repeats: int = 1,
    base_seed: int = 0,
) -> SearchSpace:
    """The :class:`SearchSpace` of a spec's ``search`` section.

    Args:
        space: ``search.space`` (dotted field -> domain, optionally with ``when``).
        methods: ``search.methods`` (method -> sub-space); empty: one method.
        suite: Configurations of ``search.suite`` (dotted field -> value each).
        repeats: ``search.repeats``.
        base_seed: ``train.seed`` of the base spec.

    Raises:
        SpecError: A domain or condition is malformed, or conditions are cyclic.
    """
    params: list[SearchParam] = []
    if methods:
        params.append(SearchParam(METHOD_KEY, METHOD_KEY, Grid(values=list(methods))))
    for key, raw in space.items():
        when = _condition(raw[CONDITION_KEY], key) if CONDITION_KEY in raw else {}
        params.append(SearchParam(key, key, parse_domain(raw), when))
    for method, sub in (methods or {}).items():
        for key, raw in (sub or {}).items():
            when = _condition(raw[CONDITION_KEY], key) if CONDITION_KEY in raw else {}
            when = {METHOD_KEY: (method,), **when}
            params.append(SearchParam(f"{method}/{key}", key, parse_domain(raw), when))
    return SearchSpace(_order(params), tuple(suite or ()), repeats, base_seed)


def sample_domain(domain: Domain, rng: random.Random) -> Any:
    """One value of a domain, drawn as Tune does (randint's upper bound exclusive)."""
    if isinstance(domain, Grid | Choice):
        return domain.values[rng.randrange(len(domain.values))]
    if isinstance(domain, Uniform):
        return rng.uniform(domain.low, domain.high)
    if isinstance(domain, LogUniform):
        import math

        return math.exp(rng.uniform(math.log(domain.low), math.log(domain.high)))
    if isinstance(domain, RandInt):
        return rng.randrange(domain.low, domain.high)
    assert isinstance(domain, QUniform)
    return round(rng.uniform(domain.low, domain.high) / domain.q) * domain.q


def _expand(params: tuple[SearchParam, ...], config: dict[str, Any], leaf) -> list[dict[str, Any]]:
    # Depth-first over the parameters: grid axes branch, other domains go through `leaf`.
    if not params:
        return [dict(config)]
    param, rest = params[0], params[1:]
    if not is_active(param, config):
        return _expand(rest, config, leaf)
    if param.key in config:
        raise SpecError(
            f"search: {param.key} is set twice in one configuration ({param.name})",
            fix="Give parameters with the same key mutually exclusive conditions.",
        )
    values = param.domain.values if isinstance(param.domain, Grid) else [leaf(param)]
    out: list[dict[str, Any]] = []
    for value in values:
        out += _expand(rest, {**config, param.key: value}, leaf)
    return out


def _with_suite_and_seeds(space: SearchSpace, configs: list[dict[str, Any]]) -> list[dict]:
    out = []
    for suite_config, config in itertools.product(space.suite or ({},), configs):
        for r in range(space.repeats):
            seeds = {SEED_KEY: space.base_seed + r} if space.repeats > 1 else {}
            out.append({**suite_config, **config, **seeds})
    return out


def grid_configurations(space: SearchSpace) -> list[dict[str, Any]]:
    """Every grid configuration; sampled parameters hold their domain (what ``show`` prints)."""
    return _with_suite_and_seeds(space, _expand(space.params, {}, lambda p: p.domain))


def configurations(space: SearchSpace, num_samples: int, seed: int) -> list[dict[str, Any]]:
    """The trials of a grid/random search: the grid, ``num_samples`` times, sampled values drawn.

    Args:
        space: The search space.
        num_samples: Repeats of the whole grid (each with new draws).
        seed: Seed of the draws (the sweep is reproducible).
    """
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for _ in range(num_samples):
        # Seed repeats share their sampled values: draw per grid point, then add the seeds.
        base = _expand(space.params, {}, lambda p: sample_domain(p.domain, rng))
        out += _with_suite_and_seeds(space, base)
    return out


def pbt_population(
    space: SearchSpace, num_samples: int, seed: int, mutations: dict[str, Domain]
) -> list[dict[str, Any]]:
    """A PBT sweep's initial configurations: the grid/random ones, and each mutated field the
    space does not set drawn from its mutation domain (seeded, separately from the space)."""
    rng = random.Random(seed + 1)
    out = []
    for config in configurations(space, num_samples, seed):
        config = dict(config)
        for key, domain in mutations.items():
            if key not in config:
                config[key] = sample_domain(domain, rng)
        out.append(config)
    return out


def validation_configurations(space: SearchSpace, limit: int) -> tuple[list[dict], bool]:
    """Configurations that cover every value a search can produce (range ends for sampled ones).

    Returns:
        Up to ``limit`` configurations, and whether that is all of them.
    """
    from sislab.search_spaces.dsl import sample_values

    expanded: list[dict[str, Any]] = [{}]
    # Sampled parameters branch over their reachable ends, like grid axes.
    for param in space.params:
        nxt = []
        for config in expanded:
            if not is_active(param, config):
                nxt.append(config)
                continue
            values = (
                param.domain.values
                if isinstance(param.domain, Grid)
                else sample_values(param.domain)
            )
            nxt += [{**config, param.key: v} for v in values]
        expanded = nxt[: limit + 1]
    full = _with_suite_and_seeds(SearchSpace((), space.suite, min(space.repeats, 2)), expanded)
    return full[:limit], len(full) <= limit and len(expanded) <= limit


def overrides_of(config: dict[str, Any], space: SearchSpace) -> dict[str, Any]:
    """A trial's dotted overrides from its Tune config (Optuna's names and suite index mapped)."""
    by_name = {p.name: p.key for p in space.params}
    out: dict[str, Any] = {}
    for name, value in config.items():
        if name == SUITE_KEY:
            out.update(space.suite[int(value)])
        elif name in by_name:
            out[by_name[name]] = value
        else:
            out[name] = value
    return out
