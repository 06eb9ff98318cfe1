"""The search-space DSL of ``search.space``: one-key domain mappings, parsed into pydantic models.

Each entry of ``search.space`` maps a dotted spec field to one domain: ``{grid: [..]}``,
``{choice: [..]}``, ``{uniform: [lo, hi]}``, ``{loguniform: [lo, hi]}``, ``{randint: [lo, hi]}``
(``hi`` exclusive, as Tune) or ``{quniform: [lo, hi, q]}``. This module imports pydantic only;
Ray is imported inside :func:`to_tune`, so the spec layer can check spaces without Ray.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sislab.errors import SpecError


class _DomainModel(BaseModel):
    # Same rules as the spec sections (extra=forbid, frozen); not StrictModel, so that
    # sislab.spec.models can import this module without an import cycle.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Grid(_DomainModel):
    """Every value is tried (a grid axis; ``num_samples`` repeats the whole grid)."""

    kind: Literal["grid"] = "grid"
    values: list[Any] = Field(min_length=1, description="Values of the grid axis.")


class Choice(_DomainModel):
    """One value sampled uniformly per trial."""

    kind: Literal["choice"] = "choice"
    values: list[Any] = Field(min_length=1, description="Candidate values.")


class _Range(_DomainModel):
    @model_validator(mode="after")
    def _ordered(self):
        if not self.low < self.high:
            raise ValueError(f"lower bound {self.low} must be below upper bound {self.high}")
        return self


class Uniform(_Range):
    """A float sampled uniformly in ``[low, high]``."""

    kind: Literal["uniform"] = "uniform"
    low: float
    high: float


class LogUniform(_Range):
    """A float sampled uniformly in log space in ``[low, high]``, ``low > 0``."""

    kind: Literal["loguniform"] = "loguniform"
    low: Annotated[float, Field(gt=0)]
    high: Annotated[float, Field(gt=0)]


class RandInt(_Range):
    """An integer sampled uniformly in ``[low, high)`` (upper bound exclusive, as Tune)."""

    kind: Literal["randint"] = "randint"
    low: int
    high: int


class QUniform(_Range):
    """A float sampled uniformly in ``[low, high]`` and rounded to a multiple of ``q``."""

    kind: Literal["quniform"] = "quniform"
    low: float
    high: float
    q: Annotated[float, Field(gt=0)]


Domain = Grid | Choice | Uniform | LogUniform | RandInt | QUniform

# Name in the YAML -> (model, names of the list positions; None: the list is the values).
_DOMAINS: dict[str, tuple[type[_DomainModel], tuple[str, ...] | None]] = {
    "grid": (Grid, None),
    "choice": (Choice, None),
    "uniform": (Uniform, ("low", "high")),
    "loguniform": (LogUniform, ("low", "high")),
    "randint": (RandInt, ("low", "high")),
    "quniform": (QUniform, ("low", "high", "q")),
}
DOMAIN_NAMES: tuple[str, ...] = tuple(_DOMAINS)
CONDITION_KEY = "when"  # {loguniform: [..], when: {model.nonlinearity: softmax}}


def _usage(name: str) -> str:
    args = _DOMAINS[name][1]
    return f"{{{name}: [{', '.join(args)}]}}" if args else f"{{{name}: [v1, v2, ...]}}"


def parse_domain(raw: Any) -> Domain:
    """Parse one ``search.space`` entry.

    Args:
        raw: The YAML value, e.g. ``{"loguniform": [1e-5, 1e-3]}``.

    Returns:
        The domain model.

    Raises:
        ValueError: The entry is not a one-key mapping naming a known domain with valid arguments;
            the message says which and shows the expected form.
    """
    if isinstance(raw, _DomainModel):
        return raw  # type: ignore[return-value]
    if isinstance(raw, dict) and CONDITION_KEY in raw:
        # `when:` makes the entry conditional (sislab.search_spaces.space); it is no domain.
        raw = {k: v for k, v in raw.items() if k != CONDITION_KEY}
    if not isinstance(raw, dict) or len(raw) != 1:
        raise ValueError(
            f"a domain is a one-key mapping such as {{grid: [1, 2]}} or "
            f"{{loguniform: [1e-5, 1e-3]}}; got {raw!r}"
        )
    ((name, args),) = raw.items()
    if name not in _DOMAINS:
        close = difflib.get_close_matches(str(name), DOMAIN_NAMES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ";"
        raise ValueError(f"unknown domain {name!r}{hint} domains: {', '.join(DOMAIN_NAMES)}")
    model, positions = _DOMAINS[name]
    if not isinstance(args, list | tuple):
        raise ValueError(f"{name} takes a list: {_usage(name)}; got {args!r}")
    if positions is None:
        fields = {"values": list(args)}
    elif len(args) != len(positions):
        raise ValueError(f"{name} takes {len(positions)} numbers: {_usage(name)}; got {args!r}")
    else:
        fields = dict(zip(positions, args, strict=True))
    try:
        return model(**fields)
    except ValidationError as exc:
        reasons = "; ".join(_reason(err) for err in exc.errors())
        raise ValueError(f"invalid {name} {list(args)!r}: {reasons}") from None


def _reason(err: dict) -> str:
    msg = err["msg"].removeprefix("Value error, ").replace("Input should be", "should be")
    return f"{err['loc'][0]} {msg}" if err["loc"] else msg


def parse_space(raw: dict[str, Any]) -> dict[str, Domain]:
    """Parse a whole ``search.space`` mapping.

    Args:
        raw: Dotted spec field -> YAML domain mapping.

    Returns:
        Dotted spec field -> domain, in the same order.

    Raises:
        SpecError: One or more entries are invalid; ``problems`` has one ``key: reason`` each.
    """
    domains: dict[str, Domain] = {}
    problems: list[str] = []
    for key, value in raw.items():
        try:
            domains[key] = parse_domain(value)
        except ValueError as exc:
            problems.append(f"search.space.{key}: {exc}")
    if problems:
        raise SpecError(
            "invalid search space: " + "; ".join(problems),
            fix=f"Write each domain as one of {', '.join(_usage(n) for n in DOMAIN_NAMES)}.",
            problems=problems,
        )
    return domains


def sample_values(domain: Domain) -> list[Any]:
    """Representative values of a domain, enough to check that every sample validates.

    Args:
        domain: A parsed domain.

    Returns:
        All values of grid/choice; both reachable ends of a range (randint's ``high - 1``,
        quniform's endpoints rounded to ``q`` as Tune does).
    """
    if isinstance(domain, Grid | Choice):
        return list(domain.values)
    if isinstance(domain, RandInt):
        return [domain.low, domain.high - 1]
    if isinstance(domain, QUniform):
        # tune.quniform: np.round(value / q) * q
        return [round(domain.low / domain.q) * domain.q, round(domain.high / domain.q) * domain.q]
    return [domain.low, domain.high]


def to_tune(domains: dict[str, Domain], *, nested: bool = False) -> dict[str, Any]:
    """Translate parsed domains into a Ray Tune ``param_space``.

    Runs on the Tune driver; imports Ray here so that this module imports without it.

    Args:
        domains: Dotted spec field -> domain (from :func:`parse_space`).
        nested: False: flat dotted keys (``{"train.lr_g": ...}``, what ``resolve`` takes);
            True: nested dicts (``{"train": {"lr_g": ...}}``).

    Returns:
        The param space with ``tune.grid_search`` / ``choice`` / ``uniform`` / ``loguniform`` /
        ``randint`` / ``quniform`` entries.
    """
    from ray import tune

    space: dict[str, Any] = {}
    for key, domain in domains.items():
        if isinstance(domain, Grid):
            value = tune.grid_search(list(domain.values))
        elif isinstance(domain, Choice):
            value = tune.choice(list(domain.values))
        elif isinstance(domain, Uniform):
            value = tune.uniform(domain.low, domain.high)
        elif isinstance(domain, LogUniform):
            value = tune.loguniform(domain.low, domain.high)
        elif isinstance(domain, RandInt):
            value = tune.randint(domain.low, domain.high)
        else:
            value = tune.quniform(domain.low, domain.high, domain.q)
        if not nested:
            space[key] = value
            continue
        node = space
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return space
