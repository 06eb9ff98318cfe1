"""``sislab validate`` and ``sislab schema``."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    """Add the spec commands."""
    validate = sub.add_parser("validate", help="check a spec; print ok or one line per problem")
    validate.add_argument("spec", help="YAML spec file")
    validate.set_defaults(handler=_validate)
    schema = sub.add_parser("schema", help="print the JSON Schema of the spec")
    schema.set_defaults(handler=_schema)


def _validate(args: argparse.Namespace) -> int:
    from sislab.spec.loader import validate_file

    problems = validate_file(args.spec)
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
