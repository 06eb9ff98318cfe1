"""``sislab validate`` and ``sislab schema``."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    """Add the spec commands."""
    validate = sub.add_parser("validate", help="check a spec; print ok or one line per problem")
    validate.add_argument("spec", help="YAML spec file")
    validate.add_argument(
        "--offline",
        action="store_true",
        help="skip network checks (reading an s3:// dataset's manifest)",
    )
    validate.add_argument(
        "--address",
        default=None,
        help="Ray cluster to check the resources against (auto, HOST:PORT); default: this machine",
    )
    validate.add_argument(
        "--num-cpus",
        type=int,
        default=None,
        help="CPUs of the local Ray to check the resources against (default: this machine's)",
    )
    validate.add_argument(
        "--no-preflight",
        action="store_true",
        help="check the spec file only: no networks built, dataset read or resources compared",
    )
    validate.set_defaults(handler=_validate)
    schema = sub.add_parser("schema", help="print the JSON Schema of the spec")
    schema.set_defaults(handler=_schema)


def _validate(args: argparse.Namespace) -> int:
    from sislab.spec.loader import load_spec, locate_problems, validate_file

    problems = validate_file(args.spec)
    if not problems and not args.no_preflight:
        # The spec is valid: what else is knowable before a job starts (networks at the spec's
        # resolution for every trial configuration, the dataset, this machine's resources).
        from sislab.orchestrator import preflight, preflight_resources

        if args.address:
            totals = preflight_resources.cluster_totals_at(args.address)
            where = f"the Ray cluster at {args.address}"
        else:
            totals = preflight_resources.local_totals(args.num_cpus)
            where = preflight.local_where(args.num_cpus)
        report = preflight.preflight(
            load_spec(args.spec), offline=args.offline, totals=totals, where=where
        )
        for note in report.notes:
            print(f"preflight: {note}")
        problems = locate_problems(args.spec, report.problems)
    if not problems:
        print("ok")
        return 0
    for line in problems:
        print(line)
    return 2


def _schema(args: argparse.Namespace) -> int:
    from sislab.spec.loader import spec_json_schema

    print(json.dumps(spec_json_schema(), indent=2))
    return 0
