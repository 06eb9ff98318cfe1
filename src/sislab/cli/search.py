"""``sislab search list`` and ``sislab search show``: the built-in suites and a spec's search."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``search`` with its ``list`` and ``show`` subcommands."""
    search = sub.add_parser("search", help="built-in ablation suites and a spec's search space")
    search_sub = search.add_subparsers(dest="search_command", required=True, metavar="COMMAND")
    listing = search_sub.add_parser("list", help="name the built-in suites and their tables")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=_list)
    show = search_sub.add_parser(
        "show", help="print a spec's search (grids: every configuration) or a suite"
    )
    show.add_argument("spec", nargs="?", help="YAML spec file")
    show.add_argument("--suite", help="show a built-in suite instead of a spec")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=_show)


def _list(args: argparse.Namespace) -> int:
    from sislab.search_spaces.suites import SUITES

    if args.json:
        data = [
            {"name": s.name, "source": s.source, "count": len(s.rows), "omitted": s.omitted}
            for s in SUITES.values()
        ]
        print(json.dumps(data, indent=2))
        return 0
    for suite in SUITES.values():
        print(f"{suite.name:30s} {len(suite.rows):3d} configurations  {suite.source}")
        for note in suite.omitted:
            print(f"{'':30s}     not included: {note}")
    return 0


def _domain_text(value: Any) -> Any:
    from sislab.search_spaces.dsl import Grid, _DomainModel

    if isinstance(value, _DomainModel):
        data = value.model_dump()
        kind = data.pop("kind")
        args = (
            data["values"] if isinstance(value, Grid) or "values" in data else list(data.values())
        )
        return {kind: args}
    return value


def show_data(spec_path: str | None, suite_name: str | None) -> dict[str, Any]:
    """What ``search show`` prints, as JSON data."""
    from sislab.errors import SpecError
    from sislab.search_spaces.space import grid_configurations
    from sislab.search_spaces.suites import get_suite

    if suite_name:
        suite = get_suite(suite_name)
        return {
            "suite": suite.name,
            "source": suite.source,
            "count": len(suite.rows),
            "rows": list(suite.rows),
            "configurations": suite.configurations,
            "omitted": list(suite.omitted),
        }
    if not spec_path:
        raise SpecError(
            "search show needs a SPEC or --suite NAME", fix="e.g. sislab search show spec.yaml"
        )
    from sislab.search_spaces.validate import space_of
    from sislab.spec.loader import load_spec

    spec = load_spec(spec_path)
    space = space_of(spec)
    data: dict[str, Any] = {
        "algorithm": spec.search.algorithm,
        "num_samples": spec.search.num_samples,
        "repeats": spec.search.repeats,
        "suite": spec.search.suite,
        "parameters": [
            {
                "name": p.name,
                "key": p.key,
                "domain": _domain_text(p.domain),
                "when": {k: list(v) for k, v in p.when.items()},
            }
            for p in space.params
        ],
    }
    if spec.search.algorithm != "optuna":
        configs = grid_configurations(space)
        data["grid_size"] = len(configs)
        data["count"] = len(configs) * spec.search.num_samples
        data["sampled"] = space.has_random
        data["configurations"] = [{k: _domain_text(v) for k, v in c.items()} for c in configs]
    pbt = spec.search.scheduler.pbt
    if pbt is not None:
        from sislab.search_spaces.space import pbt_population

        domains = pbt.domains()
        data["pbt"] = {
            **pbt.model_dump(mode="json", exclude={"mutations"}),
            "mutations": {k: _domain_text(d) for k, d in domains.items()},
            # What the sweep starts from: the configurations above, mutated fields drawn.
            "population": pbt_population(space, spec.search.num_samples, spec.train.seed, domains),
        }
    return data


def _show(args: argparse.Namespace) -> int:
    data = show_data(args.spec, args.suite)
    if args.json:
        print(json.dumps(data, indent=2, default=str))
        return 0
    if "suite" in data and "rows" in data:
        print(f"{data['suite']}: {data['source']} ({data['count']} configurations)")
        for row, config in zip(data["rows"], data["configurations"], strict=True):
            print(f"  {row:28s} {_line(config)}")
        return 0
    print(
        f"algorithm {data['algorithm']}, num_samples {data['num_samples']}, "
        f"repeats {data['repeats']}" + (f", suite {data['suite']}" if data["suite"] else "")
    )
    for p in data["parameters"]:
        when = f"  when {p['when']}" if p["when"] else ""
        print(f"  {p['name']}: {p['domain']}{when}")
    if "configurations" in data:
        sampled = " (sampled values drawn per trial)" if data["sampled"] else ""
        print(
            f"{data['grid_size']} configurations x {data['num_samples']} samples = "
            f"{data['count']} trials{sampled}"
        )
        for i, config in enumerate(data["configurations"]):
            print(f"  {i:4d}  {_line(config)}")
    if "pbt" in data:
        pbt = data["pbt"]
        print(
            f"PBT every {pbt['perturbation_interval']} epochs (burn-in "
            f"{pbt['burn_in_period']}), bottom {pbt['quantile_fraction']:g} clone the top, "
            f"{'synchronous' if pbt['synch'] else 'asynchronous'}; mutations:"
        )
        for key, domain in pbt["mutations"].items():
            print(f"  {key}: {domain}")
        print("initial population:")
        for i, config in enumerate(pbt["population"]):
            print(f"  {i:4d}  {_line(config)}")
    return 0


def _line(config: dict[str, Any]) -> str:
    return (
        ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in config.items()) or "(base spec)"
    )
