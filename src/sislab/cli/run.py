"""``sislab run`` and ``sislab ui``."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``run`` and ``ui``."""
    run = sub.add_parser("run", help="run the sweep a spec describes")
    run.add_argument("spec", help="YAML spec file")
    run.add_argument(
        "--address",
        default=None,
        help="Ray address: auto, HOST:PORT, ray://HOST:10001 (default: a local Ray)",
    )
    run.add_argument(
        "--run-dir", type=Path, default=None, help="run folder (default: runs/NAME-TIME)"
    )
    run.add_argument(
        "--runs-root", type=Path, default=Path("runs"), help="parent of new run folders"
    )
    run.add_argument(
        "--num-cpus", type=int, default=None, help="CPUs of a local Ray (default: all)"
    )
    run.add_argument(
        "--job",
        action="store_true",
        help="running as a Ray job (sislab submit): work inside the run folder, since Ray may "
        "garbage-collect the job's working_dir while the sweep runs",
    )
    run.set_defaults(handler=_run)
    ui = sub.add_parser("ui", help="open the MLflow UI on a run folder's store")
    ui.add_argument("run_dir", type=Path, help="run folder printed by sislab run")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--host", default="127.0.0.1")
    ui.set_defaults(handler=_ui)


def ui_command(run_dir: Path, port: int = 5000, host: str = "127.0.0.1") -> list[str]:
    """The ``mlflow ui`` command line for a run folder's sqlite store and artifacts."""
    run_dir = run_dir.resolve()
    return [
        sys.executable, "-m", "mlflow", "ui",
        "--backend-store-uri", f"sqlite:///{run_dir / 'mlflow.db'}",
        "--default-artifact-root", (run_dir / "mlartifacts").as_uri(),
        "--host", host, "--port", str(port),
    ]  # fmt: skip


def _print_summary(console: Console, outcome, elapsed_s: float) -> None:
    from sislab.orchestrator.summary import summary_columns, trial_summaries

    state = outcome.state
    rows = trial_summaries(state.tracking_uri, state.experiment_id, state.parent_run_id)
    columns = summary_columns(rows)
    table = Table(title=f"{state.name}: {len(rows)} trials, {elapsed_s:.0f}s, {state.status}")
    for column in ("trial", "status", "config", *columns, "mlflow run"):
        table.add_column(column.removeprefix("train/"))
    for row in rows:
        values = [f"{row.metrics[m]:.4g}" if m in row.metrics else "-" for m in columns]
        table.add_row(row.trial_id, row.status, row.overrides or "-", *values, row.run_id[:8])
    console.print(table)
    console.print(f"run folder: {outcome.run_dir.root}")
    if state.tracking_uri.startswith("sqlite:///"):
        console.print(
            f"MLflow UI: sislab ui {shlex.quote(str(outcome.run_dir.root))}  "
            "(then open http://127.0.0.1:5000)",
            highlight=False,
        )
    else:
        console.print(f"MLflow: {state.tracking_uri}, experiment {state.name}", highlight=False)


def _run(args: argparse.Namespace) -> int:
    from sislab.orchestrator.preflight import check_before_run
    from sislab.orchestrator.run_dir import RunDir
    from sislab.orchestrator.sweep import run_sweep
    from sislab.spec.loader import load_spec

    started = time.monotonic()
    spec_path = Path(args.spec).resolve()
    spec = load_spec(spec_path)
    spec = check_before_run(spec, spec_path, address=args.address, num_cpus=args.num_cpus)
    run_dir = RunDir.create(args.runs_root, spec.name, args.run_dir)
    if args.job:
        os.chdir(run_dir.root)
    console = Console()
    console.print(f"sislab run {spec.name}: run folder {run_dir.root} (Ray logs in logs/ray.log)")
    outcome = run_sweep(
        spec, spec_path, run_dir=run_dir, address=args.address, console=console,
        num_cpus=args.num_cpus,
    )  # fmt: skip
    _print_summary(console, outcome, time.monotonic() - started)
    return 0 if outcome.num_errors == 0 else 1


def _ui(args: argparse.Namespace) -> int:
    command = ui_command(args.run_dir, args.port, args.host)
    print("running:", shlex.join(command))
    os.execv(command[0], command)
    return 0  # not reached
