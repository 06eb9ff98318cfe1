"""``sislab compare``: the trials of an experiment as one table, grouped, with plots.

Runs are read through MLflow's paged ``search_runs`` (one query per 1,000 runs, no per-run calls),
grouped by the searched parameters (seed repeats fall into one group: mean ± std), and ranked by a
metric. Plots (metric vs a parameter, the Pareto front of two objectives, training curves of the
best runs) are PNG files, logged to the sweep's parent run.

Evaluation metrics are only comparable under one evaluation protocol (``sislab.metrics.protocol``):
ranking runs whose ``sislab.protocol.id`` tags differ is refused unless explicitly allowed, and then
the protocol becomes one more group key.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from sislab.errors import SpecError
from sislab.metrics.protocol import PROTOCOL_ID_TAG
from sislab.trainers.mlflow_tracker import KIND_TAG, PARENT_TAG, TRIAL_TAG

logger = logging.getLogger(__name__)

PAGE = 1000
SEED_PARAM = "train.seed"
PROTOCOL = "protocol"  # runs column and table column holding the protocol id
UNTAGGED = "(none)"
# Metrics that no evaluation protocol governs: losses, sizes, throughput, learning rates.
PROTOCOL_FREE_PREFIXES = ("train/", "model/", "system/", "data/", "lr/")


@dataclass(frozen=True)
class Comparison:
    """The grouped table and where it came from.

    Args:
        table: One row per group: the group keys (and ``protocol`` when protocols were mixed),
            n, mean, std, best value and best run.
        runs: One row per run: run_id, status, parent, protocol, params ``p.*``, metrics ``m.*``.
        metric: The ranking metric.
        mode: min or max.
        group_by: Parameters defining the groups.
        protocols: Protocol id -> runs holding the metric, when they differ (mixing allowed).
    """

    table: pd.DataFrame
    runs: pd.DataFrame
    metric: str
    mode: str
    group_by: list[str]
    protocols: dict[str, int] = field(default_factory=dict)


def iter_trial_runs(
    client: MlflowClient, experiment_id: str, parent_run_id: str | None = None
) -> Iterator[Run]:
    """Every trial run of the experiment (of one parent run when given), read in pages."""
    filters = [f"tags.`{KIND_TAG}` != 'sweep'"]
    if parent_run_id:
        filters.append(f"tags.`{PARENT_TAG}` = '{parent_run_id}'")
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], " and ".join(filters), max_results=PAGE, page_token=token
        )
        yield from page
        token = page.token
        if not token:
            return


def load_runs(
    client: MlflowClient, experiment_id: str, parent_run_id: str | None = None
) -> pd.DataFrame:
    """Every trial run of the experiment (of one parent run when given), one row each."""
    rows: list[dict[str, Any]] = []
    for run in iter_trial_runs(client, experiment_id, parent_run_id):
        row: dict[str, Any] = {
            "run_id": run.info.run_id,
            "status": run.info.status,
            "parent": run.data.tags.get(PARENT_TAG, ""),
            "trial_id": run.data.tags.get(TRIAL_TAG, ""),
            PROTOCOL: run.data.tags.get(PROTOCOL_ID_TAG, ""),
        }
        row.update({f"p.{k}": v for k, v in run.data.params.items()})
        row.update({f"m.{k}": v for k, v in run.data.metrics.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def varying_params(runs: pd.DataFrame) -> list[str]:
    """Parameters that differ between runs (seed excluded): the default grouping."""
    cols = [c for c in runs.columns if c.startswith("p.") and c != f"p.{SEED_PARAM}"]
    return [c[2:] for c in cols if runs[c].nunique(dropna=False) > 1]


def mixed_protocols(data: pd.DataFrame, metric: str) -> dict[str, int]:
    """Protocol id -> runs, for runs holding ``metric`` under more than one protocol; else {}.

    Metrics under ``PROTOCOL_FREE_PREFIXES`` and runs without any protocol tag are never mixed;
    once some run has a tag, runs without one count as the protocol ``(none)``.
    """
    if metric.startswith(PROTOCOL_FREE_PREFIXES) or PROTOCOL not in data.columns:
        return {}
    ids = data[PROTOCOL].fillna("")
    if not (ids != "").any():
        return {}
    counts = ids.replace("", UNTAGGED).value_counts()
    return {str(k): int(v) for k, v in counts.items()} if len(counts) > 1 else {}


def check_protocols(runs: pd.DataFrame, metric: str, allow: bool = False) -> dict[str, int]:
    """``mixed_protocols`` of the runs holding ``metric``, refused unless ``allow``.

    Raises:
        SpecError: The runs holding the metric were evaluated under different protocols; the
            message lists each id with its number of runs.
    """
    column = f"m.{metric}"
    held = runs[runs[column].notna()] if column in runs.columns else runs.iloc[:0]
    protocols = mixed_protocols(held, metric)
    if protocols and not allow:
        listed = ", ".join(f"{pid} ({n} runs)" for pid, n in protocols.items())
        raise SpecError(
            f"the runs holding {metric!r} were evaluated under {len(protocols)} different "
            f"protocols: {listed}; their values are not comparable",
            fix="keep one protocol with --protocol ID (or --run-dir of one sweep), or pass "
            "--allow-mixed-protocols to rank them with the protocol as a group key",
        )
    return protocols


def only_protocol(runs: pd.DataFrame, protocol_id: str) -> pd.DataFrame:
    """The runs evaluated under ``protocol_id`` (a prefix of the id is enough).

    Raises:
        SpecError: No run carries that protocol id.
    """
    ids = runs[PROTOCOL] if PROTOCOL in runs.columns else pd.Series([], dtype=str)
    kept = runs[ids.fillna("").str.startswith(protocol_id) & (ids != "")]
    if kept.empty:
        known = sorted({i for i in ids.dropna() if i})
        raise SpecError(
            f"no run was evaluated under protocol {protocol_id!r}",
            fix=f"choose --protocol among: {', '.join(known) or '(no run has a protocol tag)'}",
        )
    return kept


def compare(
    runs: pd.DataFrame,
    metric: str,
    mode: str = "min",
    group_by: list[str] | None = None,
    allow_mixed_protocols: bool = False,
) -> Comparison:
    """Group the runs and rank the groups by ``metric`` (mean over each group's repeats).

    Args:
        runs: From ``load_runs``.
        metric: The ranking metric.
        mode: min or max.
        group_by: Parameters defining the groups; None: those that vary.
        allow_mixed_protocols: Rank runs evaluated under different protocols; the protocol id
            then joins the group keys, so no mean mixes two protocols.

    Raises:
        SpecError: No run has the metric, a group-by key is no parameter, or the runs holding
            the metric were evaluated under different protocols (without
            ``allow_mixed_protocols``).
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
    protocols = check_protocols(data, metric, allow_mixed_protocols)
    if protocols:
        data = data.assign(**{PROTOCOL: data[PROTOCOL].replace("", UNTAGGED)})
    cols = [f"p.{k}" for k in keys] + ([PROTOCOL] if protocols else [])
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
    renamed = {c: c[2:] for c in cols if c.startswith("p.")}
    table = table.drop(columns=["min", "max"]).rename(columns=renamed)
    table = table.sort_values("mean", ascending=ascending, kind="stable").reset_index(drop=True)
    return Comparison(table, runs, metric, mode, keys, protocols)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def display_rows(result: Comparison) -> tuple[list[str], list[list[str]]]:
    """Header and string cells: group keys, protocol when mixed, n, 'mean ± std', best, best run."""
    keys = [*result.group_by, *([PROTOCOL] if result.protocols else [])]
    header = [*keys, "n", f"{result.metric} mean ± std", "best", "best run"]
    rows = []
    for rec in result.table.to_dict("records"):
        spread = f"{_fmt(rec['mean'])} ± {_fmt(rec['std'])}"
        cells = [_fmt(rec[k]) for k in keys]
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
