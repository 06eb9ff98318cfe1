"""``sislab estimate``: the expected device-hours (and money) of a sweep, before launch."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``estimate``."""
    est = sub.add_parser(
        "estimate", help="expected device-hours (and money) of a sweep, from timed iterations",
        description="Times a few training iterations (and one evaluation) of each distinct "
        "configuration of the sweep on this machine and multiplies out: iterations x trials, "
        "devices held, concurrency (docs/planning.md).",
    )  # fmt: skip
    est.add_argument("spec", help="YAML spec file")
    add_timing_options(est)
    est.add_argument(
        "--num-cpus", type=int, default=None,
        help="CPUs the sweep's local Ray will have, for the concurrency (default: all)",
    )  # fmt: skip
    est.add_argument("--json", action="store_true", help="print one JSON object")
    est.set_defaults(handler=_estimate, tcmalloc=True)


def add_timing_options(parser: argparse.ArgumentParser) -> None:
    """``--estimate-iters`` and ``--estimate-warmup`` (``estimate`` and ``run`` share them)."""
    parser.add_argument(
        "--estimate-iters", type=int, default=3,
        help="timed training iterations per distinct configuration (median counts)",
    )  # fmt: skip
    parser.add_argument(
        "--estimate-warmup", type=int, default=1, help="untimed iterations before them"
    )


def make_estimate(spec, iters: int, warmup: int, num_cpus: int | None):
    """The sweep's estimate on this machine's resources (``num_cpus`` CPUs if given)."""
    from sislab.orchestrator.estimate import estimate_sweep, local_resources

    return estimate_sweep(spec, iters=iters, warmup=warmup, available=local_resources(num_cpus))


def _estimate(args: argparse.Namespace) -> int:
    from sislab.orchestrator.estimate import render
    from sislab.orchestrator.preflight import check_before_run
    from sislab.spec.loader import load_spec

    spec_path = Path(args.spec).resolve()
    spec = check_before_run(load_spec(spec_path), spec_path, num_cpus=args.num_cpus)
    estimate = make_estimate(spec, args.estimate_iters, args.estimate_warmup, args.num_cpus)
    if args.json:
        data = asdict(estimate)
        data.update(prices=estimate.prices.model_dump(mode="json"), **estimate.metrics())
        print(json.dumps(data, default=str))
        return 0
    for line in render(estimate):
        print(line)
    return 0
