"""The table of a sweep's trials, read back from MLflow (what ``sislab run`` prints at the end)."""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mlflow.tracking import MlflowClient

from sislab.orchestrator.tracking import ERROR_TAG
from sislab.trainers.mlflow_tracker import PARENT_TAG, TRIAL_TAG
from sislab.trainers.run_names import label_of_run_name

SUMMARY_METRICS = ("train/loss_g", "train/loss_d", "train/images_per_s")
SUMMARY_ROWS = 20  # trials the final table lists; more: the best ones, counts and trials.csv
TRIALS_CSV = "trials.csv"  # every trial, in the run folder
# Bookkeeping values that are not scores.
_NOT_SCORES = ("/epoch", "/kid_std")


@dataclass(frozen=True)
class TrialSummary:
    """One row: the trial, its MLflow run, status, overrides, latest metrics, params and error
    (the failed trial's error line)."""

    trial_id: str
    run_id: str
    status: str
    overrides: str
    metrics: dict[str, float]
    params: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def trial_summaries(
    tracking_uri: str, experiment_id: str, parent_run_id: str
) -> list[TrialSummary]:
    """Every nested run of the parent, in trial order, with its latest metric values."""
    client = MlflowClient(tracking_uri)
    rows: list[TrialSummary] = []
    page_token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
            max_results=1000,
            page_token=page_token,
        )
        for run in page:
            name = run.info.run_name or ""
            overrides = label_of_run_name(name)
            rows.append(
                TrialSummary(
                    trial_id=run.data.tags.get(TRIAL_TAG, run.info.run_id),
                    run_id=run.info.run_id,
                    status=run.info.status,
                    overrides=overrides,
                    metrics=dict(run.data.metrics),
                    params=dict(run.data.params),
                    error=run.data.tags.get(ERROR_TAG),
                )
            )
        page_token = page.token
        if not page_token:
            break
    return sorted(rows, key=lambda r: r.trial_id)


def score_columns(metric_names, prefix: str) -> list[str]:
    """The evaluation scores among ``metric_names`` under ``prefix`` (``eval/`` or ``best/``)."""
    return sorted({m for m in metric_names if m.startswith(prefix) and not m.endswith(_NOT_SCORES)})


def summary_columns(rows: list[TrialSummary]) -> list[str]:
    """Training metrics, then the best-checkpoint scores any trial has (``best/fid``, ...)."""
    return [*SUMMARY_METRICS, *score_columns({m for r in rows for m in r.metrics}, "best/")]


def first_and_last(
    tracking_uri: str, rows: list[TrialSummary], key: str
) -> dict[str, tuple[tuple[int, float], tuple[int, float]]]:
    """Per trial id, ``(step, value)`` of the first and the last logged value of ``key`` (e.g.
    ``eval/fid``: did the trial learn between its first and last evaluation?)."""
    client = MlflowClient(tracking_uri)
    out = {}
    for row in rows:
        history = sorted(client.get_metric_history(row.run_id, key), key=lambda m: m.step)
        if history:
            out[row.trial_id] = (
                (history[0].step, history[0].value),
                (history[-1].step, history[-1].value),
            )
    return out


def shown_rows(rows: list[TrialSummary], metric: str, mode: str) -> list[TrialSummary]:
    """The rows the final table lists: all up to ``SUMMARY_ROWS``, else the best under
    ``metric`` (failed trials and trials without a finite value last)."""
    if len(rows) <= SUMMARY_ROWS:
        return rows
    sign = 1.0 if mode == "min" else -1.0

    def key(row: TrialSummary) -> tuple[bool, float]:
        value = row.metrics.get(metric)
        ranked = value is not None and math.isfinite(value) and row.status != "FAILED"
        return (not ranked, sign * value if ranked else 0.0)

    return sorted(rows, key=key)[:SUMMARY_ROWS]


def status_counts(rows: list[TrialSummary]) -> str:
    """``195 FINISHED, 5 FAILED``."""
    counts = Counter(row.status for row in rows)
    return ", ".join(f"{n} {status}" for status, n in counts.most_common())


def write_trials_csv(path: Path, rows: list[TrialSummary], varied: list[str]) -> None:
    """Every trial: id, status, the varied params, every latest metric, MLflow run id, error."""
    metrics = sorted({m for row in rows for m in row.metrics})
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["trial", "status", *varied, *metrics, "mlflow_run_id", "error"])
        for row in rows:
            writer.writerow(
                [row.trial_id, row.status, *(row.params.get(k, "") for k in varied),
                 *(row.metrics.get(m, "") for m in metrics), row.run_id, row.error or ""]
            )  # fmt: skip
