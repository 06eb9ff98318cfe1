"""The sweep's cost on its parent run: the trials' device-hours summed, the money, the estimate.

Runs on the Tune driver. Each trial logs its own ``cost/gpu_hours`` or ``cost/cpu_hours``
(``sislab.trainers.cost``); the parent run gets their sums over every trial, finished or not
(a failed trial held its devices too), ``cost/total`` at the spec's prices (its currency is the
param ``cost.currency``), the sweep's wall time ``cost/wall_s``, and, when ``sislab run`` made one,
the estimate as ``cost/estimate_*`` next to them.
"""

from __future__ import annotations

import time

from mlflow.tracking import MlflowClient

from sislab.orchestrator.estimate import SweepEstimate, price
from sislab.spec.models import CostSpec

KINDS = ("gpu", "cpu")


def summed_hours(runs) -> dict[str, float]:
    """``cost/<kind>_hours`` summed over trial runs (MLflow ``Run`` objects, latest values)."""
    return {
        f"cost/{kind}_hours": sum(r.data.metrics.get(f"cost/{kind}_hours", 0.0) for r in runs)
        for kind in KINDS
    }


def sweep_costs(prices: CostSpec, runs, started_ms: int, now_s: float) -> dict[str, float]:
    """The parent's ``cost/*`` metrics: summed hours, ``cost/total`` when priced, wall seconds."""
    out = summed_hours(runs)
    total = price(prices, out["cost/gpu_hours"], out["cost/cpu_hours"])
    if total is not None:
        out["cost/total"] = total
    out["cost/wall_s"] = max(0.0, now_s - started_ms / 1000)
    return out


def record_costs(client: MlflowClient, prices: CostSpec, parent_run_id: str, runs) -> None:
    """Log the sweep's cost on its parent run (``sislab run``/``resume`` at the end).

    Args:
        client: MLflow client.
        prices: The spec's ``cost`` section.
        parent_run_id: The parent run.
        runs: The sweep's trial runs.
    """
    started_ms = client.get_run(parent_run_id).info.start_time
    for key, value in sweep_costs(prices, runs, started_ms, time.time()).items():
        client.log_metric(parent_run_id, key, value)
    for key, value in price_params(prices).items():
        client.log_param(parent_run_id, key, value)


def price_params(prices: CostSpec) -> dict[str, str]:
    """The parent's params of the prices: ``cost.currency`` and the prices given."""
    if prices.gpu_hour is None and prices.cpu_hour is None:
        return {}
    values = prices.model_dump(mode="json")
    return {f"cost.{k}": str(v) for k, v in values.items() if v is not None}


def record_estimate(client: MlflowClient, parent_run_id: str, estimate: SweepEstimate) -> None:
    """Log the estimate made before launch (``cost/estimate_*``) on the parent run."""
    for key, value in estimate.metrics().items():
        client.log_metric(parent_run_id, key, value)
