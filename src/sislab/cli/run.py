"""``sislab run`` and ``sislab ui``."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sislab.cli.estimate import add_timing_options


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
        "--estimate", action=argparse.BooleanOptionalAction, default=None,
        help="time each distinct configuration first and print the expected device-hours, "
        "logged on the parent run as cost/estimate_* (sislab estimate; seconds per "
        "configuration). Default: on for a local Ray, off with --address (this machine is not "
        "the cluster's workers)",
    )  # fmt: skip
    add_timing_options(run)
    run.add_argument(
        "--job",
        action="store_true",
        help="running as a Ray job (sislab submit): work inside the run folder, since Ray may "
        "garbage-collect the job's working_dir while the sweep runs",
    )
    run.set_defaults(handler=_run, tcmalloc=True)
    ui = sub.add_parser(
        "ui", help="open the MLflow UI on a run folder's store",
        description="Starts a one-worker `mlflow server` on the run folder's sqlite store and "
        "prints the URL of the sweep's runs table. A sweep tracked on an MLflow server needs "
        "none: the URL on that server is printed.",
    )  # fmt: skip
    ui.add_argument("run_dir", type=Path, help="run folder printed by sislab run")
    ui.add_argument("--port", type=int, default=DEFAULT_UI_PORT)
    ui.add_argument("--host", default=DEFAULT_UI_HOST, help="0.0.0.0 to serve other machines")
    ui.set_defaults(handler=_ui)


DEFAULT_UI_PORT = 5000
DEFAULT_UI_HOST = "127.0.0.1"
UI_START_TIMEOUT_S = 120.0
# MLflow's server would also start a GenAI job runner (a huey consumer and its workers: ~8 more
# processes importing MLflow) that a GAN sweep never uses; off, the UI answers in seconds.
UI_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def ui_command(
    run_dir: Path, port: int = DEFAULT_UI_PORT, host: str = DEFAULT_UI_HOST
) -> list[str]:
    """The ``mlflow server`` command line for a run folder's sqlite store and artifacts: one
    uvicorn worker (MLflow's default of 4 quadruples the start-up on a small machine)."""
    run_dir = run_dir.resolve()
    return [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{run_dir / 'mlflow.db'}",
        "--default-artifact-root", (run_dir / "mlartifacts").as_uri(),
        "--host", host, "--port", str(port), "--workers", "1",
    ]  # fmt: skip


def _print_summary(console: Console, outcome, spec, elapsed_s: float) -> None:
    from sislab.orchestrator.parent_run import varied_keys
    from sislab.orchestrator.search_algs import objectives
    from sislab.orchestrator.summary import (
        TRIALS_CSV,
        first_and_last,
        shown_rows,
        status_counts,
        summary_columns,
        trial_summaries,
        write_trials_csv,
    )
    from sislab.trainers.run_names import short_keys

    state = outcome.state
    rows = trial_summaries(state.tracking_uri, state.experiment_id, state.parent_run_id)
    csv_path = outcome.run_dir.root / TRIALS_CSV
    write_trials_csv(csv_path, rows, varied_keys(spec))
    metrics, modes = objectives(spec)
    shown = shown_rows(rows, metrics[0], modes[0])
    columns = summary_columns(rows)
    if metrics[0] not in columns and any(metrics[0] in r.metrics for r in rows):
        columns.append(metrics[0])
    varied = short_keys(varied_keys(spec))
    title = f"{state.name}: {len(rows)} trials ({status_counts(rows)}), {elapsed_s:.0f}s, {state.status}"
    caption = None
    if len(shown) < len(rows):
        caption = f"the best {len(shown)} under {metrics[0]} ({modes[0]}); all trials: {csv_path}"
    table = Table(title=title, caption=caption)
    for column in ("trial", "status", *varied.values(), *columns, "mlflow run"):
        table.add_column(column.removeprefix("train/"))
    for row in shown:
        status = f"{row.status}: {row.error}" if row.error else row.status
        values = [f"{row.metrics[m]:.4g}" if m in row.metrics else "-" for m in columns]
        given = [row.params.get(k, "-") for k in varied]
        table.add_row(row.trial_id, status, *given, *values, row.run_id[:8])
    console.print(table)
    if spec.eval.best_metric:
        key = f"eval/{spec.eval.best_metric}"
        for trial, (first, last) in first_and_last(state.tracking_uri, shown, key).items():
            console.print(
                f"{trial} {key}: {first[1]:.4g} at the first evaluation (iteration {first[0]}), "
                f"{last[1]:.4g} at the last (iteration {last[0]})",
                highlight=False,
            )
    console.print(f"run folder: {outcome.run_dir.root}")
    for line in ui_lines(outcome.run_dir.root, state, spec):
        console.print(line, highlight=False, soft_wrap=True)


def ui_lines(run_root: Path, state, spec) -> list[str]:
    """The closing lines of ``sislab run``: how to open the sweep's runs table (its shared view
    written first, so the table shows the varied params and the sweep's metric)."""
    from mlflow.tracking import MlflowClient

    from sislab.orchestrator.mlflow_ui import base_url, preset_runs_view, runs_table_url
    from sislab.orchestrator.parent_run import varied_keys
    from sislab.orchestrator.search_algs import objectives
    from sislab.trainers.mlflow_tracker import redact

    metrics, _ = objectives(spec)
    if spec.eval.best_metric and f"eval/{spec.eval.best_metric}" not in metrics:
        metrics.append(f"eval/{spec.eval.best_metric}")  # the score the checkpoints are kept by
    client = MlflowClient(state.tracking_uri)
    key = preset_runs_view(
        client, state.experiment_id, state.parent_run_id, varied_keys(spec), metrics
    )
    if state.tracking_uri.startswith("sqlite:"):
        url = runs_table_url(base_url(DEFAULT_UI_HOST, DEFAULT_UI_PORT), state.experiment_id, key)
        return [f"MLflow UI: sislab ui {shlex.quote(str(run_root))}", f"then open {url}"]
    server = redact(state.tracking_uri)
    return [f"MLflow UI: open {runs_table_url(server, state.experiment_id, key)}"]


def _run(args: argparse.Namespace) -> int:
    from sislab.cluster.address import check_cluster_address, is_local_address
    from sislab.orchestrator.preflight import check_before_run
    from sislab.orchestrator.run_dir import RunDir
    from sislab.orchestrator.sweep import run_sweep
    from sislab.spec.loader import load_spec

    started = time.monotonic()
    spec_path = Path(args.spec).resolve()
    spec = load_spec(spec_path)
    check_cluster_address(args.address)
    spec = check_before_run(spec, spec_path, address=args.address, num_cpus=args.num_cpus)
    console = Console()
    estimate = None
    # By default only for a new local Ray (as check_before_run tells it): a cluster's workers
    # are not this machine.
    local = is_local_address(args.address) and not os.environ.get("RAY_ADDRESS")
    if args.estimate or (args.estimate is None and local):
        from sislab.cli.estimate import make_estimate
        from sislab.orchestrator.estimate import render

        estimate = make_estimate(spec, args.estimate_iters, args.estimate_warmup, args.num_cpus)
        for line in render(estimate):
            console.print(line, highlight=False, soft_wrap=True)
    run_dir = RunDir.create(args.runs_root, spec.name, args.run_dir)
    if args.job:
        os.chdir(run_dir.root)
    console.print(f"sislab run {spec.name}: run folder {run_dir.root} (Ray logs in logs/ray.log)")
    outcome = run_sweep(
        spec, spec_path, run_dir=run_dir, address=args.address, console=console,
        num_cpus=args.num_cpus, estimate=estimate,
    )  # fmt: skip
    _print_summary(console, outcome, spec, time.monotonic() - started)
    return 0 if outcome.num_errors == 0 else 1


def _ui(args: argparse.Namespace) -> int:
    from sislab.orchestrator.mlflow_ui import base_url, runs_table_url, wait_until_ready
    from sislab.orchestrator.run_dir import RunDir
    from sislab.trainers.mlflow_tracker import redact

    run_dir = RunDir.existing(args.run_dir)
    state = run_dir.load_state()
    if not state.tracking_uri.startswith("sqlite:"):
        server = redact(state.tracking_uri)
        key = _share_key(state.tracking_uri, state)
        print(f"{run_dir.root} is tracked on {server}; no local UI needed.")
        print(f"open {runs_table_url(server, state.experiment_id, key)}")
        return 0
    # A wildcard bind answers on the loopback; the printed URL names this machine.
    loopback = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    local = base_url(loopback, args.port)
    with socket.socket(socket.AF_INET6 if ":" in loopback else socket.AF_INET) as probe:
        # Another server there (an earlier `sislab ui`) would answer in place of this one.
        if probe.connect_ex((loopback, args.port)) == 0:
            print(f"port {args.port} is in use on {loopback}: pass another --port")
            return 2
    command = ui_command(run_dir.root, args.port, args.host)
    print("starting:", shlex.join(command), flush=True)
    server = subprocess.Popen(command, env={**os.environ, **UI_ENV})
    # `kill` of sislab stops the server too (MLflow's CLI forwards SIGTERM to uvicorn).
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    try:
        ready_s = wait_until_ready(local, UI_START_TIMEOUT_S, lambda: server.poll() is None)
        if ready_s is None:
            print(f"mlflow server did not answer on {local} (see its output above)")
            server.terminate()
            return 2
        key = _share_key(local, state)
        url = runs_table_url(base_url(args.host, args.port), state.experiment_id, key)
        print(f"MLflow UI ready in {ready_s:.1f} s (Ctrl-C stops it). Open:\n{url}", flush=True)
        return server.wait()
    except KeyboardInterrupt:
        server.terminate()
        server.wait()
        return 0


def _share_key(server_url: str, state) -> str | None:
    """The sweep's shared-view key if ``sislab run`` wrote its view, else None (also when the
    server does not answer: the URL without preset columns still opens the runs table)."""
    from sislab.orchestrator.mlflow_ui import SHARED_VIEW_TAG, experiment_tags, view_key

    key = view_key(state.parent_run_id)
    tags = experiment_tags(server_url, state.experiment_id)
    return key if SHARED_VIEW_TAG + key in tags else None
