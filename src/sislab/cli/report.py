"""``sislab report RUN_DIR|EXPERIMENT``: a finished suite sweep as the paper's table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``report``."""
    rep = sub.add_parser(
        "report", help="a finished suite sweep as the paper's table (Markdown, LaTeX, PNG)"
    )
    rep.add_argument("target", help="run folder of sislab run, or an MLflow experiment name")
    rep.add_argument("--tracking-uri", help="MLflow tracking URI of EXPERIMENT")
    rep.add_argument("--suite", help="suite whose paper table to fill (default: the sweep's)")
    rep.add_argument("--parent", help="sweep parent run id (default: the latest sweep)")
    rep.add_argument(
        "--out", type=Path, help="folder for table.md/.tex/.png (default: RUN_DIR/report)"
    )
    rep.add_argument("--format", choices=("md", "latex"), default="md", help="what to print")
    rep.add_argument("--no-log", action="store_true", help="do not log to the parent run")
    rep.set_defaults(handler=_report)


def _where(args: argparse.Namespace) -> tuple[str, str, str | None, Path]:
    """Tracking URI, experiment, parent run (None: the latest) and the output folder."""
    from sislab.errors import SpecError

    target = Path(args.target)
    if (target / "sweep.json").is_file():
        from sislab.orchestrator.run_dir import RunDir

        state = RunDir.existing(target).load_state()
        parent = args.parent or state.parent_run_id
        return state.tracking_uri, state.name, parent, args.out or target / "report"
    if not args.tracking_uri:
        raise SpecError(
            f"{args.target!r} is no run folder (no sweep.json) and no --tracking-uri is given",
            fix="pass a run folder, or EXPERIMENT --tracking-uri sqlite:///PATH/mlflow.db",
        )
    return args.tracking_uri, args.target, args.parent, args.out or Path("report")


def _report(args: argparse.Namespace) -> int:
    from mlflow.tracking import MlflowClient

    from sislab.errors import SpecError
    from sislab.orchestrator.report import REPORT_ARTIFACTS, build_report, latest_sweep
    from sislab.orchestrator.report_render import latex, markdown, write_all

    uri, experiment, parent, out = _where(args)
    client = MlflowClient(uri)
    if parent is None:
        exp = client.get_experiment_by_name(experiment)
        parent = latest_sweep(client, exp.experiment_id) if exp else None
        if parent is None:
            raise SpecError(f"no sweep in experiment {experiment!r} at {uri}", fix="check the name")
    report = build_report(client, experiment, parent, args.suite)
    paths = write_all(report, out)
    sys.stdout.write(markdown(report) if args.format == "md" else latex(report))
    if not args.no_log:
        for path in paths:
            client.log_artifact(parent, str(path), REPORT_ARTIFACTS)
        client.set_tag(parent, "sislab.report", report.table.suite)
    print(f"\nwrote {', '.join(str(p) for p in paths)}" + (
        "" if args.no_log else f"; logged to run {parent[:8]} under {REPORT_ARTIFACTS}/"
    ))  # fmt: skip
    return 0
