"""PNG plots of ``sislab compare``: metric vs a parameter, Pareto front, curves of the best runs."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from sislab.orchestrator.compare import Comparison, pareto_points

logger = logging.getLogger(__name__)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _numeric(series: pd.Series) -> pd.Series | None:
    values = pd.to_numeric(series, errors="coerce")
    return values if values.notna().all() else None


def plot_metric_vs_param(result: Comparison, param: str, path: Path) -> Path:
    """Every run's metric against one parameter (numbers on a log axis when they span decades)."""
    plt = _pyplot()
    runs = result.runs.dropna(subset=[f"m.{result.metric}"])
    x_raw = runs[f"p.{param}"].astype(str)
    x = _numeric(x_raw)
    fig, ax = plt.subplots(figsize=(6, 4))
    if x is not None:
        ax.scatter(x, runs[f"m.{result.metric}"], s=10, alpha=0.6)
        if x.min() > 0 and x.max() / x.min() > 100:
            ax.set_xscale("log")
    else:
        labels = sorted(x_raw.unique())
        pos = x_raw.map({v: i for i, v in enumerate(labels)})
        ax.scatter(pos, runs[f"m.{result.metric}"], s=10, alpha=0.6)
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_xlabel(param)
    ax.set_ylabel(result.metric)
    ax.set_title(f"{result.metric} vs {param} ({len(runs)} runs)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_pareto(runs: pd.DataFrame, metrics: list[str], modes: list[str], path: Path) -> Path:
    """Both objectives of every run, the non-dominated ones joined."""
    from sislab.orchestrator.search_algs import pareto_front

    plt = _pyplot()
    points = pareto_points(runs, metrics)
    front = pareto_front(points, metrics, modes)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([p[metrics[0]] for p in points], [p[metrics[1]] for p in points], s=8, alpha=0.4)
    ax.plot([p[metrics[0]] for p in front], [p[metrics[1]] for p in front], "o-", color="C3")
    ax.set_xlabel(f"{metrics[0]} ({modes[0]})")
    ax.set_ylabel(f"{metrics[1]} ({modes[1]})")
    ax.set_title(f"Pareto front: {len(front)} of {len(points)} runs")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_curves(client: MlflowClient, result: Comparison, top_k: int, path: Path) -> Path:
    """The metric's history of the ``top_k`` best runs."""
    plt = _pyplot()
    column = f"m.{result.metric}"
    runs = result.runs.dropna(subset=[column])
    best = runs.sort_values(column, ascending=result.mode == "min").head(top_k)
    fig, ax = plt.subplots(figsize=(6, 4))
    for run_id in best["run_id"]:
        history = sorted(client.get_metric_history(run_id, result.metric), key=lambda m: m.step)
        ax.plot([m.step for m in history], [m.value for m in history], label=run_id[:8])
    ax.set_xlabel("step")
    ax.set_ylabel(result.metric)
    ax.set_title(f"training curves, best {len(best)}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
