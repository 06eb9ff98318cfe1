"""``sislab chaos SPEC --seed N``: a sweep under a seeded fault schedule, and its invariants."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``chaos``."""
    chaos = sub.add_parser(
        "chaos",
        help="run a sweep while killing its workers, a trial, the driver (then resume) and, "
        "with --test-servers, stopping S3 and MLflow; check what must survive",
    )
    chaos.add_argument("spec", type=Path, help="YAML spec file")
    chaos.add_argument("--seed", type=int, required=True, help="seed of the fault schedule")
    chaos.add_argument(
        "--address", default=None, help="Ray cluster (default: a local Ray started here)"
    )
    chaos.add_argument(
        "--run-dir", type=Path, default=None, help="folder of the chaos run (default: runs/)"
    )
    chaos.add_argument(
        "--test-servers",
        action="store_true",
        help="start an S3 (moto) and an MLflow server owned by this run, put the sweep's "
        "storage, tracking and local datasets on them, and add an S3 outage and an MLflow "
        "restart to the faults (needs moto; a local Ray)",
    )
    chaos.add_argument("--worker-kills", type=int, default=3, help="Train workers killed")
    chaos.add_argument("--outage-s", type=float, default=20.0, help="seconds S3 is down")
    chaos.set_defaults(handler=_chaos)


def result_table(result) -> Table:
    """The faults injected and the invariants, as one table."""
    table = Table(title=f"sislab chaos: {result.run_dir}", show_lines=False)
    table.add_column("")
    table.add_column("what")
    table.add_column("detail")
    for item in result.injected:
        table.add_row(
            "fault",
            f"{item.fault.kind} at {item.at_s:.1f} s ({item.progress:.0%} of the steps)",
            item.detail,
        )
    for check in result.checks:
        table.add_row("ok" if check.ok else "FAILED", check.name, check.detail)
    return table


def _chaos(args: argparse.Namespace) -> int:
    from sislab.chaos.runner import run_chaos

    run_dir = args.run_dir or Path("runs") / f"chaos-{args.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    console = Console()
    console.print(f"sislab chaos {args.spec} --seed {args.seed}: run folder {run_dir}")
    result = run_chaos(
        args.spec,
        args.seed,
        run_root=run_dir,
        address=args.address,
        test_servers=args.test_servers,
        worker_kills=args.worker_kills,
        outage_s=args.outage_s,
    )
    console.print(result_table(result))
    for problem in result.figures.problems:
        console.print(f"  {problem}", highlight=False)
    console.print(f"{'all invariants held' if result.ok else 'FAILED'} in {result.wall_s:.0f} s")
    return 0 if result.ok else 1
