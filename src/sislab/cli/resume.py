"""``sislab resume RUN_DIR``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``resume``."""
    resume = sub.add_parser("resume", help="continue an interrupted sweep under its MLflow run")
    resume.add_argument("run_dir", type=Path, help="run folder printed by sislab run")
    resume.add_argument(
        "--address", default=None, help="Ray address (default: a local Ray), as for sislab run"
    )
    resume.add_argument(
        "--num-cpus", type=int, default=None, help="CPUs of a local Ray (default: all)"
    )
    resume.set_defaults(handler=_resume)


def _resume(args: argparse.Namespace) -> int:
    from sislab.cli.run import _print_summary
    from sislab.orchestrator.resume import NOT_RESTORED, resume_sweep
    from sislab.orchestrator.run_dir import RunDir
    from sislab.spec.loader import load_spec

    started = time.monotonic()
    run_dir = RunDir.existing(args.run_dir)
    console = Console()
    console.print(f"sislab resume {run_dir.root}")
    console.print(f"note: {NOT_RESTORED}", highlight=False)
    outcome = resume_sweep(run_dir, address=args.address, console=console, num_cpus=args.num_cpus)
    spec = load_spec(run_dir.spec_path)  # the summary's columns: what the sweep varies
    _print_summary(console, outcome, spec, time.monotonic() - started)
    return 0 if outcome.num_errors == 0 else 1
