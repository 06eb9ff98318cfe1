"""``sislab compare``: the trials of an experiment as one table, grouped, with plots.

Runs are read through MLflow's paged ``search_runs`` (one query per 1,000 runs, no per-run calls),
grouped by the searched parameters (seed repeats fall into one group: mean ± std), and ranked by a
metric. Plots (metric vs a parameter, the Pareto front of two objectives, training curves of the
best runs) are PNG files, logged to the sweep's parent run.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.tracking import MlflowClient

from sislab.errors import SpecError
from sislab.trainers.mlflow_tracker import KIND_TAG, PARENT_TAG, TRIAL_TAG

logger = logging.getLogger(__name__)

PAGE = 1000
SEED_PARAM = "train.seed"


@dataclass(frozen=True)
class Comparison:
    """The grouped table and where it came from.

    Args:
        table: One row per group: the group keys, n, mean, std, best value and best run.
        runs: One row per run: run_id, status, parent, params ``p.*``, metrics ``m.*``.
        metric: The ranking metric.
        mode: min or max.
        group_by: Parameters defining the groups.
    """

    table: pd.DataFrame
    runs: pd.DataFrame
    metric: str
    mode: str
    group_by: list[str]


def load_runs(
    client: MlflowClient, experiment_id: str, parent_run_id: str | None = None
) -> pd.DataFrame:
    """Every trial run of the experiment (of one parent run when given), one row each."""
    filters = [f"tags.`{KIND_TAG}` != 'sweep'"]
    if parent_run_id:
        filters.append(f"tags.`{PARENT_TAG}` = '{parent_run_id}'")
    rows: list[dict[str, Any]] = []
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], " and ".join(filters), max_results=PAGE, page_token=token
        )
        for run in page:
            row: dict[str, Any] = {
                "run_id": run.info.run_id,
                "status": run.info.status,
                "parent": run.data.tags.get(PARENT_TAG, ""),
                "trial_id": run.data.tags.get(TRIAL_TAG, ""),
            }
            row.update({f"p.{k}": v for k, v in run.data.params.items()})
            row.update({f"m.{k}": v for k, v in run.data.metrics.items()})
            rows.append(row)
        token = page.token
        if not token:
            break
    return pd.DataFrame(rows)


def varying_params(runs: pd.DataFrame) -> list[str]:
    """Parameters that differ between runs (seed excluded): the default grouping."""
    cols = [c for c in runs.columns if c.startswith("p.") and c != f"p.{SEED_PARAM}"]
    return [c[2:] for c in cols if runs[c].nunique(dropna=False) > 1]


def compare(
    runs: pd.DataFrame, metric: str, mode: str = "min", group_by: list[str] | None = None
) -> Comparison:
    """Group the runs and rank the groups by ``metric`` (mean over each group's repeats).

    Raises:
        SpecError: No run has the metric, or a group-by key is no parameter.
    """
    column = f"m.{metric}"
    if runs.empty or column not in runs.columns:
        known = sorted(c[2:] for c in runs.columns if c.startswith("m.")) if len(runs) else []
        raise SpecError(
            f"no run has the metric {metric!r}",
            fix=f"choose --metric among: {', '.join(known) or '(no runs)'}",
        )
    keys = group_by if group_by else varying_params(runs)
    missing = [k for k in keys if f"p.{k}" not in runs.columns]
    if missing:
        raise SpecError(
            f"--group-by {', '.join(missing)}: not a parameter of these runs",
            fix="name a dotted spec field, e.g. --group-by model.ngf",
        )
    data = runs[runs[column].notna()]
    cols = [f"p.{k}" for k in keys]
    ascending = mode == "min"
    if cols:
        grouped = data.groupby(cols, dropna=False, sort=False)[column]
        best_idx = grouped.idxmin() if ascending else grouped.idxmax()
        table = grouped.agg(["count", "mean", "std", "min", "max"]).reset_index()
        table["best_run"] = data.loc[best_idx.values, "run_id"].values
    else:
        table = pd.DataFrame(
            {
                "count": [len(data)],
                "mean": [data[column].mean()],
                "std": [data[column].std()],
                "min": [data[column].min()],
                "max": [data[column].max()],
                "best_run": [
                    data.loc[
                        data[column].idxmin() if ascending else data[column].idxmax(), "run_id"
                    ]
                ],
            }
        )
    table["best"] = table["min"] if ascending else table["max"]
    table = table.drop(columns=["min", "max"]).rename(columns={c: c[2:] for c in cols})
    table = table.sort_values("mean", ascending=ascending, kind="stable").reset_index(drop=True)
    return Comparison(table, runs, metric, mode, keys)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def display_rows(result: Comparison) -> tuple[list[str], list[list[str]]]:
    """Header and string cells: group keys, n, 'mean ± std', best, best run."""
    header = [*result.group_by, "n", f"{result.metric} mean ± std", "best", "best run"]
    rows = []
    for rec in result.table.to_dict("records"):
        spread = f"{_fmt(rec['mean'])} ± {_fmt(rec['std'])}"
        cells = [_fmt(rec[k]) for k in result.group_by]
        rows.append([*cells, str(rec["count"]), spread, _fmt(rec["best"]), rec["best_run"][:8]])
    return header, rows


def render(result: Comparison, fmt: str) -> str:
    """The table as csv, md or html text (``table`` is drawn by the CLI with rich)."""
    if fmt == "csv":
        return result.table.to_csv(index=False)
    header, rows = display_rows(result)
    if fmt == "md":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines) + "\n"
    if fmt == "html":
        return pd.DataFrame(rows, columns=header).to_html(index=False)
    raise SpecError(f"unknown format {fmt!r}", fix="use table, csv, md or html")


def pareto_points(runs: pd.DataFrame, metrics: list[str]) -> list[dict[str, Any]]:
    """Runs holding both metrics, as mappings for ``pareto_front``."""
    cols = [f"m.{m}" for m in metrics]
    if not all(c in runs.columns for c in cols):
        return []
    data = runs.dropna(subset=cols)
    return [
        {"run_id": r["run_id"], **{m: r[f"m.{m}"] for m in metrics}}
        for r in data.to_dict("records")
    ]


def log_pareto_front(
    client: MlflowClient, state, metrics: list[str], modes: list[str], trials: list[dict]
) -> list[dict[str, Any]]:
    """The sweep's Pareto front, logged to the parent run (``pareto_front.json`` and a tag).

    Args:
        client: MLflow client.
        state: The sweep's ``SweepState``.
        metrics: The objectives.
        modes: min or max per objective.
        trials: Each trial's last reported metrics (with ``trial_id``); objectives missing there
            (e.g. ``model/*``, logged to MLflow only) are taken from the trial's MLflow run.
    """
    import json
    import tempfile

    from sislab.orchestrator.search_algs import pareto_front

    runs = load_runs(client, state.experiment_id, state.parent_run_id)
    by_trial = {rec["trial_id"]: rec for rec in runs.to_dict("records")} if len(runs) else {}
    points = []
    for trial in trials:
        run = by_trial.get(trial.get("trial_id"), {})
        point = {"trial_id": trial.get("trial_id"), "run_id": run.get("run_id")}
        for m in metrics:
            value = trial.get(m, run.get(f"m.{m}"))
            point[m] = value
        points.append(point)
    front = pareto_front(points, metrics, modes)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pareto_front.json"
        path.write_text(json.dumps({"metrics": metrics, "modes": modes, "front": front}, indent=2))
        client.log_artifact(state.parent_run_id, str(path))
    ids = ",".join(str(p["trial_id"]) for p in front)
    client.set_tag(state.parent_run_id, "sislab.pareto_front", ids[:5000])
    logger.info("Pareto front of %s: %d trials", metrics, len(front))
    return front
