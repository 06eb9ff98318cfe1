"""``sislab submit``: send a sweep to a remote Ray cluster through the Jobs API."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``submit``."""
    from sislab.cli.jobs import add_token_flag

    parser = sub.add_parser(
        "submit", help="run a spec on a remote Ray cluster (Jobs API)",
        description="Submit `sislab run SPEC --address auto` as a Ray job. Credentials never "
        "travel with the job: the cluster needs its own (see docs/cluster.md).",
    )  # fmt: skip
    parser.add_argument("spec", type=Path, help="YAML spec file")
    parser.add_argument(
        "--address",
        default=os.environ.get("RAY_API_SERVER_ADDRESS"),
        help="Jobs API of the head, http://HEAD:8265 (default: $RAY_API_SERVER_ADDRESS)",
    )
    parser.add_argument(
        "--working-dir", type=Path, default=None,
        help="project folder to upload (must contain the spec; default: the spec alone)",
    )  # fmt: skip
    parser.add_argument(
        "--pip", action="append", default=[], metavar="REQ",
        help="extra pip requirement for the job (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME",
        help="pass this local environment variable by name (repeatable; credentials refused)",
    )  # fmt: skip
    parser.add_argument(
        "--ship-sislab", action="store_true",
        help="upload this machine's sislab package instead of using the cluster's install",
    )  # fmt: skip
    add_token_flag(parser)
    parser.add_argument("--submission-id", default=None, help="job id to use (default: Ray's)")
    parser.add_argument("--wait", action="store_true", help="wait for the job and print its end")
    parser.add_argument("--timeout-s", type=float, default=24 * 3600.0, help="limit of --wait")
    parser.set_defaults(handler=_submit)


def _warnings(spec) -> list[str]:
    notes = []
    if not spec.tracking.uri:
        notes.append(
            "tracking.uri is not set: MLflow records go to sqlite in the job's working dir on the "
            "head and disappear with it; set it to a shared server (sislab mlflow serve)"
        )
    if not spec.storage.uri or "://" not in spec.storage.uri:
        notes.append("storage is not s3://: checkpoints stay on the head node's disk")
    uri = spec.dataset.uri
    if "://" not in uri:
        notes.append(f"dataset.uri {uri} is a local path: it must exist on every cluster node")
    return notes


def _submit(args: argparse.Namespace) -> int:
    from sislab.cli.jobs import ray_token, require_address
    from sislab.cluster import jobs
    from sislab.orchestrator.preflight import check_before_run
    from sislab.spec.loader import load_spec

    address = require_address(args.address)
    jobs.check_env_names(args.env)  # a credential is refused before the cluster is contacted
    token = ray_token(args)
    jobs.check_access(address, token)  # a missing or wrong token fails now, in a second
    spec = load_spec(args.spec)  # fail here, not minutes later on the cluster
    # The cluster's resources and a local dataset path are checked by `sislab run` on it.
    check_before_run(spec, args.spec, address=address, read_local_dataset=False)
    for note in _warnings(spec):
        print(f"warning: {note}")
    with jobs.staging_folder() as staging:
        submission = jobs.build_submission(
            args.spec, staging, working_dir=args.working_dir, pip=args.pip,
            env_names=args.env, environ=os.environ, ship_sislab=args.ship_sislab,
        )  # fmt: skip
        print("entrypoint:", submission.entrypoint)
        print("runtime env:", json.dumps(submission.printable_runtime_env()))
        job_id = jobs.submit(address, submission, args.submission_id, token)
    print(f"submitted job {job_id}")
    print(f"  dashboard: {address.rstrip('/')}/#/jobs/{job_id}")
    print(f"  logs:      sislab jobs logs {job_id} --address {address} --follow")
    print(f"  stop:      sislab jobs stop {job_id} --address {address}")
    if not args.wait:
        return 0
    status = jobs.wait_for_job(address, job_id, args.timeout_s, token)
    print(f"job {job_id}: {status}")
    return 0 if status == "SUCCEEDED" else 1
