"""``sislab report``: a finished suite sweep as the paper's table, read back from MLflow.

The sweep's parent run names its suite (the ``search.space`` param); each trial run is placed in
the suite row whose fields its params equal, and each cell is the mean ± std over the row's
finished runs (the seeds of ``search.repeats``) of the column's metric. A row or metric no
finished run has stays missing, with a footnote saying why; the paper's numbers sit beside them
and the evaluation protocol of the runs is named in the caption. Runs on the CLI's process.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pandas as pd
from mlflow.tracking import MlflowClient

from sislab.errors import SpecError
from sislab.orchestrator.compare import PROTOCOL, load_runs, varying_params
from sislab.search_spaces.paper_tables import PAPER_TABLES, PaperTable
from sislab.search_spaces.suites import SUITES, Suite
from sislab.trainers.mlflow_tracker import KIND_TAG
from sislab.trainers.run_params import param_text

REPORT_ARTIFACTS = "report"
# Params a run computes from its configuration (model sizes): they differ with the row, never
# on their own.
DERIVED_PREFIXES = ("summary.",)
NO_RUN = "no finished run of this row in the sweep"
NO_METRIC = "the row's finished runs logged no {metric}"
NOT_IN_PAPER = "the paper's text gives no value"


@dataclass(frozen=True)
class Cell:
    """One measured cell: mean and std (NaN with one run) over ``n`` runs, in the paper's unit."""

    mean: float
    std: float
    n: int


@dataclass(frozen=True)
class ReportRow:
    """A suite row: its label, finished runs, measured cells (None: missing) and the paper's."""

    label: str
    num_runs: int
    cells: dict[str, Cell | None]
    paper: dict[str, float]


@dataclass(frozen=True)
class Report:
    """The paper's table filled from one sweep.

    Args:
        table: The paper's table definition.
        suite: Its suite.
        rows: One per suite row, in the paper's order.
        protocols: Evaluation protocol ids of the runs used (empty: no run had one).
        experiment: MLflow experiment name.
        parent_run_id: The sweep's parent run.
        dataset: The sweep's dataset URI (the paper's numbers are on ``table.dataset``).
        unmatched: Finished trial runs that match no row of the suite.
        pooled: Params besides the suite's and the seed that differ between the runs used: a
            cell then averages over them (said in a footnote).
    """

    table: PaperTable
    suite: Suite
    rows: list[ReportRow]
    protocols: list[str]
    experiment: str
    parent_run_id: str
    dataset: str
    unmatched: int = 0
    pooled: tuple[str, ...] = ()


def latest_sweep(client: MlflowClient, experiment_id: str) -> str | None:
    """The newest sweep parent run of an experiment."""
    found = client.search_runs(
        [experiment_id], f"tags.`{KIND_TAG}` = 'sweep'", max_results=1,
        order_by=["attributes.start_time DESC"],
    )  # fmt: skip
    return found[0].info.run_id if found else None


def suite_of(client: MlflowClient, parent_run_id: str) -> str | None:
    """The suite the sweep ran, from its parent's ``search.space`` param (None: no suite)."""
    space = client.get_run(parent_run_id).data.params.get("search.space")
    return json.loads(space).get("suite") if space else None


def _matches(runs: pd.DataFrame, config: dict) -> pd.Series:
    keep = pd.Series(True, index=runs.index)
    for key, value in config.items():
        column = f"p.{key}"
        if column not in runs.columns:
            return pd.Series(False, index=runs.index)
        keep &= runs[column] == param_text(value)
    return keep


def _cell(values: pd.Series, scale: float) -> Cell | None:
    values = values.dropna()
    values = values[values.map(math.isfinite)]
    if values.empty:
        return None
    std = float(values.std()) * scale if len(values) > 1 else math.nan
    return Cell(float(values.mean()) * scale, std, len(values))


def build_report(
    client: MlflowClient, experiment: str, parent_run_id: str, suite_name: str | None = None
) -> Report:
    """The paper's table of the sweep ``parent_run_id`` of ``experiment``.

    Args:
        client: MLflow client of the sweep's store.
        experiment: The experiment's name.
        parent_run_id: The sweep's parent run.
        suite_name: The suite (None: the one the sweep ran).

    Raises:
        SpecError: The sweep ran no suite, or one without a paper table.
    """
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise SpecError(f"no MLflow experiment {experiment!r}", fix="check the name")
    name = suite_name or suite_of(client, parent_run_id)
    if name is None:
        raise SpecError(
            f"sweep {parent_run_id[:8]} ran no search.suite",
            fix=f"name the table with --suite (one of: {', '.join(PAPER_TABLES)})",
        )
    if name not in PAPER_TABLES:
        raise SpecError(
            f"suite {name!r} has no paper table",
            fix=f"report one of: {', '.join(PAPER_TABLES)}",
        )
    table, suite = PAPER_TABLES[name], SUITES[name]
    runs = load_runs(client, exp.experiment_id, parent_run_id)
    finished = runs[runs["status"] == "FINISHED"] if len(runs) else runs
    rows, used = [], pd.Series(False, index=finished.index)
    for label, config in suite.rows.items():
        mine = finished[_matches(finished, config)] if len(finished) else finished
        used |= finished.index.isin(mine.index)
        cells = {}
        for column in table.columns:
            key = f"m.{column.metric}"
            cells[column.label] = _cell(mine[key], column.scale) if key in mine.columns else None
        rows.append(ReportRow(label, len(mine), cells, table.paper.get(label, {})))
    protocols = []
    if len(finished) and PROTOCOL in finished.columns:
        protocols = sorted({p for p in finished.loc[used, PROTOCOL].fillna("") if p})
    suite_keys = {key for config in suite.rows.values() for key in config}
    pooled = (
        [
            k
            for k in varying_params(finished.loc[used])
            if k not in suite_keys and not k.startswith(DERIVED_PREFIXES)
        ]
        if len(finished)
        else []
    )
    parent = client.get_run(parent_run_id)
    return Report(
        table,
        suite,
        rows,
        protocols,
        experiment,
        parent_run_id,
        parent.data.params.get("dataset.uri", "?"),
        unmatched=int((~used).sum()),
        pooled=tuple(pooled),
    )
