"""``sislab compare EXPERIMENT``: one table of a sweep's trials, grouped over repeats, with plots."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

FORMATS = ("table", "csv", "md", "html")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``compare``."""
    cmp = sub.add_parser("compare", help="compare the trials of an experiment (mean ± std)")
    cmp.add_argument("experiment", nargs="?", help="MLflow experiment name (default: the run's)")
    where = cmp.add_mutually_exclusive_group()
    where.add_argument("--tracking-uri", help="MLflow tracking URI (sqlite:///..., http://...)")
    where.add_argument("--run-dir", type=Path, help="run folder of sislab run (its store)")
    cmp.add_argument("--metric", action="append", help="ranking metric; twice: Pareto plot")
    cmp.add_argument("--mode", choices=("min", "max"), action="append", help="per --metric")
    cmp.add_argument("--group-by", action="append", default=[], help="parameter to group by")
    cmp.add_argument("--format", choices=FORMATS, default="table")
    cmp.add_argument("--plots", type=Path, default=None, help="folder for the PNG plots")
    cmp.add_argument("--top-k", type=int, default=5, help="training curves of the best K runs")
    cmp.add_argument("--no-log", action="store_true", help="do not log plots to the parent run")
    protocols = cmp.add_mutually_exclusive_group()
    protocols.add_argument(
        "--protocol", metavar="ID", help="only runs evaluated under this protocol id (prefix)"
    )
    protocols.add_argument(
        "--allow-mixed-protocols",
        action="store_true",
        help="rank runs evaluated under different protocols (protocol id becomes a group key)",
    )
    cmp.set_defaults(handler=_compare)


def _source(args: argparse.Namespace) -> tuple[str, str, str | None]:
    from sislab.errors import SpecError

    if args.run_dir is not None:
        from sislab.orchestrator.run_dir import RunDir

        state = RunDir.existing(args.run_dir).load_state()
        return state.tracking_uri, args.experiment or state.name, state.parent_run_id
    if not args.tracking_uri or not args.experiment:
        raise SpecError(
            "compare needs EXPERIMENT with --tracking-uri, or --run-dir",
            fix="e.g. sislab compare my-sweep --tracking-uri sqlite:///runs/x/mlflow.db",
        )
    return args.tracking_uri, args.experiment, None


def _latest_parent(client, experiment_id: str) -> str | None:
    from sislab.trainers.mlflow_tracker import KIND_TAG

    found = client.search_runs(
        [experiment_id], f"tags.`{KIND_TAG}` = 'sweep'", max_results=1,
        order_by=["attributes.start_time DESC"],
    )  # fmt: skip
    return found[0].info.run_id if found else None


def _compare(args: argparse.Namespace) -> int:
    from mlflow.tracking import MlflowClient

    from sislab.errors import SpecError
    from sislab.orchestrator import compare_plots
    from sislab.orchestrator.compare import (
        check_protocols,
        compare,
        display_rows,
        load_runs,
        only_protocol,
        render,
    )

    uri, name, parent = _source(args)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        raise SpecError(f"no MLflow experiment {name!r} at {uri}", fix="check the name")
    metrics = args.metric or ["train/loss_g"]
    modes = args.mode or ["min"] * len(metrics)
    modes += [modes[-1]] * (len(metrics) - len(modes))
    started = time.perf_counter()
    runs = load_runs(client, experiment.experiment_id, parent)
    if args.protocol:
        runs = only_protocol(runs, args.protocol)
    result = compare(runs, metrics[0], modes[0], args.group_by or None, args.allow_mixed_protocols)
    for metric in metrics[1:2]:  # the Pareto plot's second objective
        check_protocols(runs, metric, args.allow_mixed_protocols)
    elapsed = time.perf_counter() - started
    if args.format == "table":
        from rich.console import Console
        from rich.table import Table

        header, rows = display_rows(result)
        table = Table(title=f"{name}: {len(runs)} runs, {len(rows)} groups ({elapsed:.2f}s)")
        for column in header:
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        Console().print(table)
    else:
        sys.stdout.write(render(result, args.format))
    if args.plots is None:
        return 0
    args.plots.mkdir(parents=True, exist_ok=True)
    paths = []
    if result.group_by:
        param = result.group_by[0]
        paths.append(compare_plots.plot_metric_vs_param(
            result, param, args.plots / f"metric_vs_{param.replace('/', '_')}.png"))  # fmt: skip
    if len(metrics) > 1:
        paths.append(
            compare_plots.plot_pareto(runs, metrics[:2], modes[:2], args.plots / "pareto.png")
        )
    if args.top_k > 0:
        paths.append(
            compare_plots.plot_curves(client, result, args.top_k, args.plots / "curves.png")
        )
    parent = parent or _latest_parent(client, experiment.experiment_id)
    for path in paths:
        print(f"plot: {path}", file=sys.stderr)
        if parent and not args.no_log:
            client.log_artifact(parent, str(path), "compare")
    return 0
