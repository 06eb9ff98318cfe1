"""``sislab jobs list|logs|stop``: the Ray jobs of a cluster's Jobs API."""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sislab.errors import ClusterError


def require_address(address: str | None) -> str:
    """The Jobs API address, or an error saying how to give it."""
    if not address:
        raise ClusterError(
            "no Jobs API address",
            fix="pass --address http://HEAD:8265 or export RAY_API_SERVER_ADDRESS",
        )
    return address


def add_token_flag(parser: argparse.ArgumentParser) -> None:
    """The ``--ray-token-file`` flag of commands that call the Jobs API."""
    parser.add_argument(
        "--ray-token-file", type=Path, default=None, metavar="PATH",
        help="file holding the cluster's Ray auth token (default: $RAY_AUTH_TOKEN, then the "
        "file $RAY_AUTH_TOKEN_PATH, then ~/.ray/auth_token; none: no token sent)",
    )  # fmt: skip


def ray_token(args: argparse.Namespace):
    """The token the Jobs API calls send (``cluster.ray_token.find_token``)."""
    from sislab.cluster.ray_token import find_token

    return find_token(args.ray_token_file, os.environ, Path.home())


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``jobs`` with ``list``, ``logs`` and ``stop``."""
    parser = sub.add_parser("jobs", help="list, follow or stop jobs on a Ray cluster")
    actions = parser.add_subparsers(dest="jobs_action", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--address",
        default=os.environ.get("RAY_API_SERVER_ADDRESS"),
        help="Jobs API of the head, http://HEAD:8265 (default: $RAY_API_SERVER_ADDRESS)",
    )
    add_token_flag(common)
    actions.add_parser("list", parents=[common], help="jobs of the cluster").set_defaults(
        handler=_list
    )
    logs = actions.add_parser("logs", parents=[common], help="a job's driver output")
    logs.add_argument("job_id")
    logs.add_argument("--follow", action="store_true", help="keep printing until the job ends")
    logs.set_defaults(handler=_logs)
    stop = actions.add_parser("stop", parents=[common], help="stop a job")
    stop.add_argument("job_id")
    stop.set_defaults(handler=_stop)


def _time(ms: int | None) -> str:
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M") if ms else "-"


def _list(args: argparse.Namespace) -> int:
    from sislab.cluster import jobs

    table = Table(title=f"jobs at {args.address}")
    for column in ("job id", "status", "started", "ended", "entrypoint"):
        table.add_column(column)
    for job in jobs.list_jobs(require_address(args.address), ray_token(args)):
        job_id = job.submission_id or job.job_id or "-"
        table.add_row(
            job_id, str(job.status.value), _time(job.start_time), _time(job.end_time),
            job.entrypoint,
        )  # fmt: skip
    Console().print(table)
    return 0


def _logs(args: argparse.Namespace) -> int:
    from sislab.cluster import jobs

    address = require_address(args.address)
    if not args.follow:
        print(jobs.job_logs(address, args.job_id, ray_token(args)), end="")
        return 0
    for chunk in jobs.follow_logs(address, args.job_id, ray_token(args)):
        print(chunk, end="", flush=True)
    return 0


def _stop(args: argparse.Namespace) -> int:
    from sislab.cluster import jobs

    stopped = jobs.stop_job(require_address(args.address), args.job_id, ray_token(args))
    print(f"job {args.job_id}: {'stopping' if stopped else 'was not running'}")
    return 0
